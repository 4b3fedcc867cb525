"""supervisord event listener: records each process exit and give-up (``utils.alerts``).

Supervisor sends ``PROCESS_STATE_EXITED`` (``expected:0`` when the process died on its own;
supervisor then restarts it) and ``PROCESS_STATE_FATAL`` (it gave up). Each becomes a
``system_logs`` row under ``rivalscope.process`` and, when unexpected, an alert; both are
listed on ``/admin``. The listener speaks supervisor's protocol on stdin/stdout and logs to
stderr; a failure to record is logged and never stops it.
"""

from __future__ import annotations

import logging
import sys

from supervisor import childutils

log = logging.getLogger("utils.process_events")


def handle(headers: dict[str, str], payload: str) -> str | None:
    """Record one event; returns the recorded message (None for other events)."""
    from utils.alerts import record_process_event

    event = headers.get("eventname", "")
    if event not in ("PROCESS_STATE_EXITED", "PROCESS_STATE_FATAL"):
        return None
    fields, _data = childutils.eventdata(payload + "\n")
    if fields.get("processname") == "process-events":
        return None
    pid = fields.get("pid")
    return record_process_event(
        event.removeprefix("PROCESS_STATE_"), fields.get("processname", "?"),
        pid=int(pid) if pid and pid.isdigit() else None,
        expected=fields.get("expected") == "1", from_state=fields.get("from_state", ""))


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s process-events: %(message)s")
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        try:
            message = handle(headers, payload)
            if message:
                log.info("%s", message)
        except Exception:  # noqa: BLE001 - the listener must keep listening
            log.exception("could not record %s", headers.get("eventname"))
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    main()
