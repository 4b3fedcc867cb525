"""Browser pages for monitoring: watchlists, their change timeline and trend charts, the
public Atom feed (secret token in the URL) and the dashboard's "since your last visit"."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional

from analysis.changes import KINDS, summary
from analysis.ssrf import parse_allow_networks
from models import Watchlist, db
from routes.api_common import MAX_ID, enqueue_start
from routes.watchlists_charts import trend_charts
from routes.web_forms import ConfirmForm
from routes.web_security import add_page_headers
from routes.web_views import url_lines
from utils.operations.watchlists import (
    ChangeOps,
    NotificationOps,
    RunOps,
    WatchlistOps,
    change_body,
)
from utils.watchlist_input import validate_watchlist

bp = Blueprint("watchlists_web", __name__)
bp.after_request(add_page_headers)

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TEXT_KINDS = ("title", "meta_description", "canonical", "lang")


class WatchlistForm(FlaskForm):
    name = StringField("Name")
    urls = TextAreaField("Sites (2 or more, one per line)")
    own_url = StringField("Your own site (optional, one of the sites)", validators=[Optional()])
    max_pages = IntegerField("Pages to crawl per site", default=10, validators=[Optional()])
    every = SelectField("Schedule", choices=[
        SelectChoice("off", "Off (run by hand)"), SelectChoice("day", "Daily"),
        SelectChoice("week", "Weekly")], default="day")
    hour = IntegerField("Hour (0-23)", default=6, validators=[Optional()])
    weekday = SelectField("Day (weekly)", default="0", choices=[
        SelectChoice(str(i), day) for i, day in enumerate(WEEKDAYS)])
    timezone = StringField("Time zone (IANA, e.g. Europe/Berlin)", default="UTC")
    emails = TextAreaField("E-mail the digest to (one per line)", validators=[Optional()])
    webhook_url = StringField("Webhook URL (optional)", validators=[Optional()])


def _owned(watchlist_id: int) -> Watchlist:
    watchlist = None
    if 1 <= watchlist_id <= MAX_ID:
        watchlist = WatchlistOps.get_for_user(db.session, watchlist_id, current_user.id)
    if watchlist is None:
        abort(404, "No such watchlist among yours.")
    return watchlist


def _payload(form: WatchlistForm) -> dict[str, Any]:
    every = form.every.data
    return {
        "name": form.name.data or "", "urls": [v for _, v in url_lines(form.urls.data or "")],
        "own_url": (form.own_url.data or "").strip() or None,
        "max_pages": form.max_pages.data if form.max_pages.data is not None else 10,
        "schedule": {"every": every, "hour": form.hour.data if form.hour.data is not None
                     else -1,
                     "weekday": int(form.weekday.data) if every == "week" else None,
                     "timezone": (form.timezone.data or "").strip()},
        "notify": {"emails": [e for _, e in url_lines(form.emails.data or "")],
                   "webhook_url": (form.webhook_url.data or "").strip() or None},
    }


def _fill(form: WatchlistForm, watchlist: Watchlist) -> None:
    form.name.data = watchlist.name
    form.urls.data = "\n".join(watchlist.urls)
    form.own_url.data = watchlist.own_url or ""
    form.max_pages.data = watchlist.max_pages
    form.every.data = watchlist.schedule_every
    form.hour.data = watchlist.schedule_hour
    form.weekday.data = str(watchlist.schedule_weekday or 0)
    form.timezone.data = watchlist.timezone
    form.emails.data = "\n".join(watchlist.notify_emails or [])
    form.webhook_url.data = watchlist.webhook_url or ""


def _flash_secret(secret: str | None) -> None:
    if secret:
        flash(f"Webhook secret (shown once; the X-Rivalscope-Signature header is "
              f"sha256=HMAC of the body with it): {secret}", "secret")


def _save(form: WatchlistForm, watchlist: Watchlist | None):
    """Validate and store; returns a redirect, or the error dict to show."""
    paused = watchlist.paused if watchlist else False
    checked = validate_watchlist(
        dict(_payload(form), paused=paused), current_app.config["MAX_URLS_PER_BATCH"],
        allow_networks=tuple(parse_allow_networks(
            current_app.config.get("FETCH_ALLOW_NETWORKS", ""))))
    if not checked.ok:
        return None, checked.errors
    if watchlist is None:
        watchlist, secret = WatchlistOps.create(db.session, current_user.id, checked)
    else:
        from models.base import utcnow

        secret = WatchlistOps.apply(watchlist, checked, utcnow())
    db.session.commit()
    _flash_secret(secret)
    return redirect(url_for("watchlists_web.show", watchlist_id=watchlist.id)), None


@bp.get("/watchlists")
@login_required
def index():
    rows, _ = WatchlistOps.list_for_user(db.session, current_user.id, limit=200)
    return render_template("watchlists/index.html", watchlists=rows)


@bp.route("/watchlists/new", methods=["GET", "POST"])
@login_required
def new():
    form = WatchlistForm()
    errors: dict[str, Any] = {}
    if form.validate_on_submit():
        response, errors = _save(form, None)
        if response is not None:
            return response
    elif request.method == "POST":
        errors = {"form": "The form expired; please try again."}
    return render_template("watchlists/form.html", form=form, errors=errors, watchlist=None,
                           max_urls=current_app.config["MAX_URLS_PER_BATCH"]), \
        400 if errors else 200


@bp.route("/watchlists/<int:watchlist_id>/edit", methods=["GET", "POST"])
@login_required
def edit(watchlist_id: int):
    watchlist = _owned(watchlist_id)
    form = WatchlistForm()
    errors: dict[str, Any] = {}
    if request.method == "GET":
        _fill(form, watchlist)
    elif form.validate_on_submit():
        response, errors = _save(form, watchlist)
        if response is not None:
            return response
    else:
        errors = {"form": "The form expired; please try again."}
    return render_template("watchlists/form.html", form=form, errors=errors,
                           watchlist=watchlist,
                           max_urls=current_app.config["MAX_URLS_PER_BATCH"]), \
        400 if errors else 200


def _confirmed() -> None:
    if not ConfirmForm().validate_on_submit():
        abort(400, "The form expired; please try again.")


@bp.post("/watchlists/<int:watchlist_id>/pause")
@login_required
def pause(watchlist_id: int):
    """Pause or resume (resuming schedules the next slot; missed ones are not run)."""
    from models.base import utcnow

    watchlist = _owned(watchlist_id)
    _confirmed()
    watchlist.paused = not watchlist.paused
    WatchlistOps.reschedule(watchlist, utcnow())
    db.session.commit()
    flash("Paused." if watchlist.paused else "Resumed.", "info")
    return redirect(url_for("watchlists_web.show", watchlist_id=watchlist.id))


@bp.post("/watchlists/<int:watchlist_id>/delete")
@login_required
def delete(watchlist_id: int):
    watchlist = _owned(watchlist_id)
    _confirmed()
    WatchlistOps.delete(db.session, watchlist)
    db.session.commit()
    flash("The watchlist was deleted (its runs stay as batches).", "info")
    return redirect(url_for("watchlists_web.index"))


@bp.post("/watchlists/<int:watchlist_id>/run")
@login_required
def run(watchlist_id: int):
    watchlist = _owned(watchlist_id)
    _confirmed()
    batch_id = RunOps.run_now(db.session, watchlist)
    db.session.commit()
    enqueue_start(batch_id)
    flash("Run started.", "info")
    return redirect(url_for("web.batch", batch_id=batch_id))


@bp.post("/watchlists/<int:watchlist_id>/feed")
@login_required
def rotate_feed(watchlist_id: int):
    """Revoke the feed URL: a new token replaces the old one."""
    watchlist = _owned(watchlist_id)
    _confirmed()
    WatchlistOps.rotate_feed_token(watchlist)
    db.session.commit()
    flash("The old feed link no longer works; use the new one.", "info")
    return redirect(url_for("watchlists_web.show", watchlist_id=watchlist.id))


@bp.get("/watchlists/<int:watchlist_id>")
@login_required
def show(watchlist_id: int):
    """Latest comparison, trend charts, the change timeline (filterable) and delivery status."""
    watchlist = _owned(watchlist_id)
    site = request.args.get("site") or None
    kind = request.args.get("kind") or None
    cursor = request.args.get("before", "")
    before_id = int(cursor) if cursor.isdigit() and 0 < int(cursor) <= MAX_ID else None
    changes, next_cursor = ChangeOps.for_watchlist(db.session, watchlist.id, site_url=site,
                                                   kind=kind, before_id=before_id, limit=50)
    runs, _ = RunOps.list_for(db.session, watchlist.id, limit=10)
    latest = next((r for r in runs if r.status in ("completed", "partial")), None)
    history = RunOps.score_history(db.session, watchlist.id)
    items = [dict(change_body(c), summary=summary(change_body(c)),
                  text=c.kind in TEXT_KINDS or c.kind == "h1") for c in changes]
    notifications = NotificationOps.for_watchlist(db.session, watchlist.id)
    page = render_template(
        "watchlists/show.html", watchlist=watchlist, changes=items, next_cursor=next_cursor,
        runs=runs, latest=latest, charts=trend_charts(history, list(watchlist.urls)),
        history=history, notifications=notifications, site=site, kind=kind, kinds=KINDS,
        feed_url=url_for("watchlists_web.feed", token=watchlist.feed_token, _external=True),
        confirm=ConfirmForm(), weekdays=WEEKDAYS)
    WatchlistOps.mark_viewed(watchlist)
    db.session.commit()
    return page


@bp.get("/watchlists/feed/<token>.atom")
def feed(token: str):
    """The Atom feed of a watchlist's changes; the token is the only credential."""
    watchlist = WatchlistOps.by_feed_token(db.session, token) if 20 <= len(token) <= 64 \
        else None
    if watchlist is None:
        abort(404)
    changes, _ = ChangeOps.for_watchlist(db.session, watchlist.id, limit=100)
    ns = "http://www.w3.org/2005/Atom"
    root = ET.Element("feed", xmlns=ns)
    ET.SubElement(root, "title").text = f"Rivalscope: {watchlist.name}"
    ET.SubElement(root, "id").text = f"urn:rivalscope:watchlist:{watchlist.id}"
    updated = changes[0].detected_at if changes else watchlist.updated_at
    ET.SubElement(root, "updated").text = updated.isoformat()
    page = url_for("watchlists_web.show", watchlist_id=watchlist.id, _external=True)
    ET.SubElement(root, "link", href=page)
    ET.SubElement(ET.SubElement(root, "author"), "name").text = "Rivalscope"
    for change in changes:
        body = change_body(change)
        entry = ET.SubElement(root, "entry")
        ET.SubElement(entry, "id").text = f"urn:rivalscope:change:{change.id}"
        ET.SubElement(entry, "title").text = f"{change.site_url}: {summary(body)}"
        ET.SubElement(entry, "updated").text = change.detected_at.isoformat()
        ET.SubElement(entry, "link", href=f"{page}?kind={change.kind}")
        ET.SubElement(entry, "category", term=change.kind)
        ET.SubElement(entry, "content", type="text").text = (
            f"{change.kind}\nbefore: {body['before']}\nafter: {body['after']}")
    xml = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return Response(xml, mimetype="application/atom+xml",
                    headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


@bp.app_template_global()
def watchlist_changes_since_last_visit() -> list[dict[str, Any]] | None:
    """For the dashboard: unseen changes per watchlist of the signed-in user (None when the
    user has no watchlist, so the dashboard shows nothing about monitoring)."""
    if not current_user.is_authenticated:
        return None
    if not WatchlistOps.list_for_user(db.session, current_user.id, limit=1)[0]:
        return None
    return ChangeOps.since_last_visit(db.session, current_user.id)
