"""Soak of the embedded broker (issue 14): `make run` (supervisor: web, worker, beat, Flower;
SQLite, filesystem broker) for N minutes, Flower restarted 5 times, the broker folder's file
count and size sampled every minute. Beat's own cleanup task prunes it every 5 minutes.

    python bench/broker_soak.py [--minutes 20] [--restarts 5]

Prints one line per sample and a RESULT line; a flat folder means the first and last
samples are close and the maximum stays bounded.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.drills.embedded import EmbeddedRun  # noqa: E402
from utils.broker import folder_options, folder_usage  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--restarts", type=int, default=5)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop supervisord on the way out
    run = EmbeddedRun(BROKER_TRACE="").start()  # no drill trace file: it would grow
    try:
        options = folder_options(run.broker)
        duration = args.minutes * 60
        restart_every = duration / (args.restarts + 1)
        started = time.monotonic()
        next_sample = next_restart = 0.0
        restarts, samples = 0, []
        while (elapsed := time.monotonic() - started) < duration:
            if elapsed >= next_restart + restart_every and restarts < args.restarts:
                run.ctl("restart", "flower")
                restarts += 1
                next_restart = elapsed
            if elapsed >= next_sample:
                usage = folder_usage(options)
                samples.append(usage)
                print(f"{elapsed / 60:5.1f} min  files {usage['files']:5d}  "
                      f"bytes {usage['bytes']:9d}  flower restarts {restarts}", flush=True)
                next_sample = elapsed + 60
            time.sleep(1)
        usage = folder_usage(options)
        samples.append(usage)
        cleanups = run.scalar("SELECT count(*) FROM maintenance_runs WHERE task = "
                              "'maintenance.cleanup_stale_db_sessions'")
        print(f"RESULT broker_soak minutes={args.minutes} flower_restarts={restarts} "
              f"cleanup_runs={cleanups} files_first={samples[0]['files']} "
              f"files_last={usage['files']} files_max={max(s['files'] for s in samples)} "
              f"bytes_first={samples[0]['bytes']} bytes_last={usage['bytes']} "
              f"bytes_max={max(s['bytes'] for s in samples)}", flush=True)
    finally:
        run.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
