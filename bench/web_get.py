"""GET /api/v1/batches/<id> (a 50-site batch, bearer token) against a minimal Flask +
Flask-SQLAlchemy app reading one row by primary key, same gunicorn settings, same load.

    python bench/web_get.py [--duration 15] [--threads 8] [--workers 2] [--web-threads 4]
"""

from __future__ import annotations

from common import ratio, result_line
from webload import arguments, run_both, settings_line


def main() -> None:
    args = arguments(__doc__)
    ours, baseline = run_both(
        args,
        lambda o: lambda c: c.get(f"{o.base}/api/v1/batches/{o.batch_id}", headers=o.headers),
        lambda base, item_id: lambda c: c.get(f"{base}/items/{item_id}"))
    print(settings_line(args))
    print(ours.line("rivalscope GET batch (50)"))
    print(baseline.line("baseline GET one row by PK"))
    print(f"ratio ours/baseline {ratio(ours.rps, baseline.rps)} (target >= 0.6)")
    result_line("web_get", ours=f"{ours.rps:.1f}", baseline=f"{baseline.rps:.1f}", unit="req/s",
                ratio=ratio(ours.rps, baseline.rps))


if __name__ == "__main__":
    main()
