"""POST /api/v1/batches with 50 URLs (validated, normalised, batch + 50 sites inserted in one
transaction, start_batch enqueued to Redis after the commit) against the minimal Flask +
Flask-SQLAlchemy app inserting ONE row from the same body. The baseline is therefore a
floor, not like-for-like work; the target for ours is an absolute >= 200 req/s.
No worker runs; the queued start_batch messages are purged afterwards.

    python bench/web_post.py [--duration 15] [--threads 8] [--workers 2] [--web-threads 4]
"""

from __future__ import annotations

from common import ratio, result_line
from webload import arguments, batch_payload, run_both, settings_line


def main() -> None:
    args = arguments(__doc__)
    payload = batch_payload()
    ours, baseline = run_both(
        args,
        lambda o: lambda c: c.post(f"{o.base}/api/v1/batches", json=payload, headers=o.headers),
        lambda base, _item: lambda c: c.post(f"{base}/items", json=payload))
    print(settings_line(args))
    print(ours.line("rivalscope POST batch (50)"))
    print(baseline.line("baseline POST one-row insert"))
    print(f"ratio ours/baseline {ratio(ours.rps, baseline.rps)}; ours {ours.rps:.0f} req/s "
          f"(target >= 200 req/s)")
    if ours.errors:
        print(f"statuses: {ours.statuses}")
    result_line("web_post", ours=f"{ours.rps:.1f}", baseline=f"{baseline.rps:.1f}",
                unit="req/s", ratio=ratio(ours.rps, baseline.rps))


if __name__ == "__main__":
    main()
