"""Browser pages: dashboard, new batch, live batch page, comparison, site report, exports."""

from __future__ import annotations

from datetime import datetime

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from models import Batch, db
from models.base import utcnow
from routes.api_common import MAX_ID, enqueue_start
from routes.api_exports import csv_export, export_filename, json_export
from routes.page_lists import page_number, site_pages
from routes.web_forms import ConfirmForm, NewBatchForm
from routes.web_security import add_page_headers
from routes.web_views import (
    FINISHED,
    comparison_view,
    line_errors,
    site_columns,
    status_document,
    url_lines,
)
from utils.batch_input import validate_batch
from utils.db_operations import (
    BatchOps,
    ComparisonOps,
    EventOps,
    PageOps,
    ReportOps,
    SiteOps,
)

bp = Blueprint("web", __name__)
bp.after_request(add_page_headers)

DASHBOARD_PAGE = 20


def _owned_batch(batch_id: int) -> Batch:
    batch = None
    if 1 <= batch_id <= MAX_ID:
        batch = BatchOps.get_for_user(db.session, batch_id, current_user.id)
    if batch is None:
        abort(404, "No such batch among yours.")
    return batch


@bp.get("/")
@login_required
def dashboard():
    """The user's batches, newest first, with status and progress."""
    before = request.args.get("before", "")
    before_id = int(before) if before.isdigit() and 0 < int(before) <= MAX_ID else None
    rows, next_cursor = BatchOps.list_for_user(db.session, current_user.id,
                                               before_id=before_id, limit=DASHBOARD_PAGE)
    finished = ReportOps.finished_site_counts(db.session, [b.id for b in rows])
    batches = [{"batch": b, "progress": ReportOps.progress_of(b, finished.get(b.id, 0))}
               for b in rows]
    return render_template("dashboard.html", batches=batches, next_cursor=next_cursor,
                           paged=before_id is not None)


@bp.route("/batches/new", methods=["GET", "POST"])
@login_required
def new_batch():
    """The new-batch form; invalid lines are listed by line number, the text kept as typed."""
    form = NewBatchForm()
    errors: list[dict] = []
    list_error = None
    status = 200
    if form.validate_on_submit():
        items = url_lines(form.urls.data)
        checked = validate_batch({"name": form.name.data or "", "max_pages": form.max_pages.data,
                                 "urls": [value for _, value in items]},
                                current_app.config["MAX_URLS_PER_BATCH"])
        if checked.ok:
            batch = BatchOps.create(db.session, current_user.id, checked.name, checked.urls,
                                    checked.max_pages)
            db.session.commit()
            enqueue_start(batch.id)
            return redirect(url_for("web.batch", batch_id=batch.id))
        errors, list_error = line_errors(items, checked.errors.get("urls"))
        if not items:
            list_error = "Enter at least one site."
        for key in ("name", "max_pages"):
            if key in checked.errors:
                getattr(form, key).errors = [checked.errors[key]]
        status = 400
    elif request.method == "POST":
        status = 400
    return render_template("batches/new.html", form=form, url_errors=errors,
                           list_error=list_error,
                           max_urls=current_app.config["MAX_URLS_PER_BATCH"]), status


@bp.get("/batches/<int:batch_id>")
@login_required
def batch(batch_id: int):
    """Live progress, per-site status, the activity timeline and the cancel button."""
    batch = _owned_batch(batch_id)
    sites = ReportOps.sites(db.session, batch.id)
    events = EventOps.for_batch(db.session, batch.id)
    document = status_document(batch, BatchOps.progress(db.session, batch), sites,
                               ReportOps.analysed_page_counts(db.session, batch.id), [])
    return render_template("batches/show.html", batch=batch, doc=document, events=events,
                           last_event=events[-1].id if events else 0, confirm=ConfirmForm())


@bp.get("/batches/<int:batch_id>/status.json")
@login_required
def batch_status(batch_id: int):
    """What the batch page polls (``?after=<event id>`` for new timeline entries)."""
    batch = _owned_batch(batch_id)
    after = request.args.get("after", "0")
    after_id = int(after) if after.isdigit() and int(after) <= MAX_ID else 0
    document = status_document(
        batch, BatchOps.progress(db.session, batch), ReportOps.sites(db.session, batch.id),
        ReportOps.analysed_page_counts(db.session, batch.id),
        EventOps.for_batch(db.session, batch.id, after_id=after_id, limit=200))
    response = jsonify(document)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/batches/<int:batch_id>/cancel")
@login_required
def cancel(batch_id: int):
    batch = _owned_batch(batch_id)
    if ConfirmForm().validate_on_submit() and BatchOps.cancel(db.session, batch):
        db.session.commit()
        flash("The batch was cancelled.", "info")
    else:
        flash(f"The batch already finished ({batch.status}).", "info")
    return redirect(url_for("web.batch", batch_id=batch.id))


@bp.post("/batches/<int:batch_id>/delete")
@login_required
def delete(batch_id: int):
    batch = _owned_batch(batch_id)
    if not ConfirmForm().validate_on_submit():
        abort(400, "The form expired; please try again.")
    BatchOps.cancel(db.session, batch)
    BatchOps.delete(db.session, batch)
    db.session.commit()
    flash("The batch was deleted.", "info")
    return redirect(url_for("web.dashboard"))


@bp.get("/batches/<int:batch_id>/comparison")
@login_required
def comparison(batch_id: int):
    """Metrics x sites grid with winners, competitor cards and SVG charts."""
    batch = _owned_batch(batch_id)
    data = ComparisonOps.for_batch(db.session, batch.id)
    if data is None:
        flash("The comparison appears when the batch has finished.", "info")
        return redirect(url_for("web.batch", batch_id=batch.id))
    view = comparison_view(ReportOps.sites(db.session, batch.id), data)
    return render_template("batches/comparison.html", batch=batch, view=view)


@bp.get("/sites/<int:site_id>")
@login_required
def site(site_id: int):
    """Every report field and the pages crawled with their issues."""
    found = None
    if 1 <= site_id <= MAX_ID:
        found = SiteOps.get_for_user(db.session, site_id, current_user.id)
    if found is None:
        abort(404, "No such site among yours.")
    listing = site_pages(db.session, found.id, page_number(request.args.get("page")))
    return render_template("sites/show.html", site=found, column=site_columns([found])[0],
                           report=found.report or {}, scores=found.scores or {},
                           pages=listing["items"], listing=listing, batch=found.batch)


@bp.get("/batches/<int:batch_id>/export.csv")
@login_required
def export_csv(batch_id: int):
    batch = _owned_batch(batch_id)
    text = csv_export(batch, ReportOps.sites(db.session, batch.id))
    return Response(text, headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{export_filename(batch, "csv")}"'})


@bp.get("/batches/<int:batch_id>/export.json")
@login_required
def export_json(batch_id: int):
    batch = _owned_batch(batch_id)
    sites = ReportOps.sites(db.session, batch.id)
    pages = {s.id: PageOps.for_site(db.session, s.id) for s in sites}
    response = jsonify(json_export(batch, BatchOps.progress(db.session, batch), sites, pages,
                                   ComparisonOps.for_batch(db.session, batch.id)))
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{export_filename(batch, "json")}"')
    return response


@bp.app_template_global()
def now_utc() -> datetime:
    return utcnow()


@bp.app_template_global()
def is_finished(batch: Batch) -> bool:
    return batch.status in FINISHED
