"""What the browser and the API both do to a batch: cancel, delete, export. Each caller
checks ownership and answers in its own way; the work is written once, here."""

from __future__ import annotations

from flask import Response, jsonify

from models import Batch, db
from routes.api_exports import csv_export, export_filename, json_export
from routes.api_xlsx import XLSX_MIMETYPE, xlsx_export
from utils.db_operations import BatchOps, ComparisonOps, PageOps, ReportOps

EXPORT_KINDS = ("csv", "excel.csv", "xlsx", "json")


def cancel_batch(batch: Batch) -> bool:
    """Cancel and commit; False when the batch had already finished."""
    if not BatchOps.cancel(db.session, batch):
        return False
    db.session.commit()
    return True


def delete_batch(batch: Batch) -> None:
    """Delete the batch with its sites, pages, events and comparison (cancelled first)."""
    BatchOps.cancel(db.session, batch)
    BatchOps.delete(db.session, batch)
    db.session.commit()


def export_response(batch: Batch, kind: str) -> Response:
    """The download of ``kind``: RFC 4180 CSV, the same with a UTF-8 byte order mark for
    Excel ("excel.csv"), an XLSX workbook (sites, metrics, pages, issues) or JSON."""
    sites = ReportOps.sites(db.session, batch.id)
    disposition = {"Content-Disposition":
                   f'attachment; filename="{export_filename(batch, kind)}"'}
    if kind in ("csv", "excel.csv"):
        return Response(csv_export(batch, sites, excel=kind == "excel.csv"),
                        headers={"Content-Type": "text/csv; charset=utf-8", **disposition})
    pages = {site.id: PageOps.for_site(db.session, site.id) for site in sites}
    comparison = ComparisonOps.for_batch(db.session, batch.id)
    if kind == "xlsx":
        return Response(xlsx_export(batch, sites, pages, comparison), mimetype=XLSX_MIMETYPE,
                        headers=disposition)
    response = jsonify(json_export(batch, BatchOps.progress(db.session, batch), sites, pages,
                                   comparison))
    response.headers.update(disposition)
    return response
