"""Browser pages: dashboard, new batch, live batch page, comparison, site report, exports."""

from __future__ import annotations

from datetime import datetime

from flask import (
    Blueprint,
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

from analysis.explain import issue_help, issue_label
from models import Batch, db
from models.base import utcnow
from routes.api_common import MAX_ID, batch_quota_refusal, enqueue_start
from routes.api_serializers import site_name
from routes.batch_actions import cancel_batch, delete_batch, export_response
from routes.page_lists import page_number, site_pages
from routes.web_forms import ConfirmForm, NewBatchForm, RenameSiteForm
from routes.web_views import (
    FINISHED,
    breakdown_view,
    comparison_view,
    line_errors,
    site_columns,
    status_document,
    timeline_events,
    url_lines,
)
from utils.batch_input import validate_batch, validate_own_url
from utils.db_operations import (
    BatchOps,
    ComparisonOps,
    EventOps,
    ReportOps,
    SiteOps,
)
from utils.operations.reporting import SiteNameOps

bp = Blueprint("web", __name__)

DASHBOARD_PAGE = 20


def _owned_batch(batch_id: int) -> Batch:
    batch = None
    if 1 <= batch_id <= MAX_ID:
        batch = BatchOps.get_for_user(db.session, batch_id, current_user.id)
    if batch is None:
        abort(404, "No such batch among yours.")
    return batch


@bp.get("/")
def dashboard():
    """The user's batches, newest first, with status and progress; signed-out visitors see
    what the product does."""
    if not current_user.is_authenticated:
        return render_template("landing.html")
    before = request.args.get("before", "")
    before_id = int(before) if before.isdigit() and 0 < int(before) <= MAX_ID else None
    rows, next_cursor = BatchOps.list_for_user(db.session, current_user.id,
                                               before_id=before_id, limit=DASHBOARD_PAGE)
    finished = ReportOps.finished_site_counts(db.session, [b.id for b in rows])
    batches = [{"batch": b, "progress": BatchOps.progress_from(b, finished.get(b.id, 0))}
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
    more_errors = 0
    status = 200
    if form.validate_on_submit():
        items = url_lines(form.urls.data)
        checked = validate_batch({"name": form.name.data or "", "max_pages": form.max_pages.data,
                                 "urls": [value for _, value in items]},
                                current_app.config["MAX_URLS_PER_BATCH"])
        own_url, own_errors = (validate_own_url({"own_url": (form.own_url.data or "").strip()},
                                                checked.urls) if checked.ok else (None, {}))
        if own_errors:
            form.own_url.errors = ["Enter one of the sites listed above (or leave it empty)."]
        refusal = (batch_quota_refusal(current_user.id) if checked.ok and not own_errors
                   else None)
        if checked.ok and not own_errors and refusal is None:
            batch = BatchOps.create(db.session, current_user.id, checked.name, checked.urls,
                                    checked.max_pages, own_url=own_url,
                                    scheme_guessed=checked.scheme_guessed)
            db.session.commit()
            enqueue_start(batch.id)
            return redirect(url_for("web.batch", batch_id=batch.id))
        if refusal is not None:  # per-user limits (utils/operations/limits.py)
            page = render_template("batches/new.html", form=form, url_errors=[],
                                   list_error=None, quota_error=refusal.message,
                                   max_urls=current_app.config["MAX_URLS_PER_BATCH"])
            return page, 429, {"Retry-After": str(refusal.retry_after)}
        errors, list_error = line_errors(items, checked.errors.get("urls"))
        cap = current_app.config["MAX_FORM_ERRORS"]
        more_errors, errors = max(0, len(errors) - cap), errors[:cap]
        if not items:
            list_error = "Enter at least one site."
        for key in ("name", "max_pages"):
            if key in checked.errors:
                getattr(form, key).errors = [checked.errors[key]]
        status = 400
    elif request.method == "POST":
        status = 400
    return render_template("batches/new.html", form=form, url_errors=errors,
                           list_error=list_error, more_errors=more_errors,
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
    return render_template("batches/show.html", batch=batch, doc=document,
                           events=timeline_events(events, sites),
                           own_id=next((s.id for s in sites if s.is_own), None),
                           last_event=events[-1].id if events else 0, confirm=ConfirmForm())


@bp.get("/batches/<int:batch_id>/status.json")
@login_required
def batch_status(batch_id: int):
    """What the batch page polls (``?after=<event id>`` for new timeline entries)."""
    found = (BatchOps.status_for_user(db.session, batch_id, current_user.id, for_page=True)
             if 1 <= batch_id <= MAX_ID else None)
    if found is None:
        abort(404, "No such batch among yours.")
    batch, sites, progress = found
    after = request.args.get("after", "0")
    after_id = int(after) if after.isdigit() and int(after) <= MAX_ID else 0
    # One query per poll; the timeline is read only when it has something new.
    events = (EventOps.for_batch(db.session, batch.id, after_id=after_id, limit=200)
              if batch.last_event_id > after_id else [])
    document = status_document(batch, progress, sites, {s.id: s.pages for s in sites},
                               events)
    response = jsonify(document)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/batches/<int:batch_id>/cancel")
@login_required
def cancel(batch_id: int):
    batch = _owned_batch(batch_id)
    if ConfirmForm().validate_on_submit() and cancel_batch(batch):
        flash("The batch was cancelled.", "info")
    else:
        flash(f"The batch already finished ({batch.status}).", "info")
    return redirect(url_for("web.batch", batch_id=batch.id))


@bp.get("/batches/<int:batch_id>/delete")
@login_required
def confirm_delete(batch_id: int):
    """Asks before deleting: what goes, and a button to confirm."""
    batch = _owned_batch(batch_id)
    return render_template("batches/delete.html", batch=batch, confirm=ConfirmForm())


@bp.post("/batches/<int:batch_id>/delete")
@login_required
def delete(batch_id: int):
    """Delete once confirmed (``confirm=yes``); otherwise ask first."""
    batch = _owned_batch(batch_id)
    if not ConfirmForm().validate_on_submit():
        abort(400, "The form expired; please try again.")
    if request.form.get("confirm") != "yes":
        return redirect(url_for("web.confirm_delete", batch_id=batch.id))
    delete_batch(batch)
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
    report = found.report or {}
    return render_template("sites/show.html", site=found, column=site_columns([found])[0],
                           report=report, scores=found.scores or {}, pages=listing["items"],
                           listing=listing, batch=found.batch,
                           rows=breakdown_view(report) if report else [],
                           rename=RenameSiteForm(name=found.display_name or ""))


@bp.post("/sites/<int:site_id>/rename")
@login_required
def rename_site(site_id: int):
    """Give the site a name (empty: back to the name its pages give)."""
    found = SiteOps.get_for_user(db.session, site_id, current_user.id) \
        if 1 <= site_id <= MAX_ID else None
    if found is None:
        abort(404, "No such site among yours.")
    form = RenameSiteForm()
    if not form.validate_on_submit():
        abort(400, "The name is too long (at most 200 characters), or the form expired.")
    SiteNameOps.rename(db.session, found, form.name.data)
    db.session.commit()
    flash(f"The site is now called {site_name(found)}.", "info")
    return redirect(url_for("web.site", site_id=found.id))


@bp.get("/batches/<int:batch_id>/export.csv")
@login_required
def export_csv(batch_id: int):
    """RFC 4180 CSV; ``?excel=1``: the same with a UTF-8 byte order mark, for Excel."""
    kind = "excel.csv" if request.args.get("excel") == "1" else "csv"
    return export_response(_owned_batch(batch_id), kind)


@bp.get("/batches/<int:batch_id>/export.xlsx")
@login_required
def export_xlsx(batch_id: int):
    return export_response(_owned_batch(batch_id), "xlsx")


@bp.get("/batches/<int:batch_id>/export.json")
@login_required
def export_json(batch_id: int):
    return export_response(_owned_batch(batch_id), "json")


@bp.app_template_global()
def now_utc() -> datetime:
    return utcnow()


@bp.app_template_global()
def is_finished(batch: Batch) -> bool:
    return batch.status in FINISHED


@bp.app_template_filter("plural")
def plural(count: int | None, word: str, many: str | None = None) -> str:
    """"1 site", "2 sites" (``many`` for irregular plurals)."""
    count = count or 0
    return f"{count:,} {word if count == 1 else (many or word + 's')}"


@bp.app_template_global()
def issue_words(code: str) -> dict[str, str]:
    return {"label": issue_label(code), "help": issue_help(code)}
