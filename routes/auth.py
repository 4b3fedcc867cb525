"""Accounts: sign up, sign in (with lockout), sign out, and the account page with API tokens."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.exc import IntegrityError

from models import db
from routes.web_forms import ConfirmForm, SignInForm, SignUpForm, TokenForm
from routes.web_security import add_page_headers
from utils.db_operations import UserOps

bp = Blueprint("auth", __name__)
bp.after_request(add_page_headers)


def safe_next(target: str | None) -> str:
    """Only a local path is followed after sign-in (no open redirect)."""
    if target:
        parts = urlsplit(target)
        if (not parts.scheme and not parts.netloc and target.startswith("/")
                and not target.startswith("//") and "\\" not in target):
            return target
    return url_for("web.dashboard")


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    """Create an account and sign in."""
    if current_user.is_authenticated:
        return redirect(url_for("web.dashboard"))
    form = SignUpForm()
    status = 200
    if form.validate_on_submit():
        if UserOps.by_email(db.session, form.email.data):
            form.email.errors.append("An account with this e-mail already exists. Sign in?")
            status = 409
        else:
            try:
                user = UserOps.create(db.session, form.email.data, form.password.data)
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                form.email.errors.append("An account with this e-mail already exists.")
                status = 409
            else:
                login_user(user)
                flash("Welcome to Rivalscope. Add the sites you want to compare.", "success")
                return redirect(url_for("web.new_batch"))
    elif request.method == "POST":
        status = 400
    return render_template("auth/signup.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in; five wrong passwords lock the account for a few minutes."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = SignInForm()
    status = 200
    if form.validate_on_submit():
        user, reason = UserOps.authenticate(db.session, form.email.data, form.password.data)
        db.session.commit()
        if user is not None:
            login_user(user, remember=bool(form.remember.data))
            return redirect(safe_next(request.args.get("next")))
        if reason == "locked":
            form.form_errors.append("Too many failed attempts: this account is locked for a "
                                    "few minutes.")
            status = 429
        else:
            form.form_errors.append("Wrong e-mail or password.")
            status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout():
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400, "The form expired; please try again.")
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


def _account_page(token_form: TokenForm, new_token: str | None = None, status: int = 200):
    tokens = UserOps.tokens(db.session, current_user)
    return render_template("auth/account.html", token_form=token_form, tokens=tokens,
                           new_token=new_token), status


@bp.get("/account")
@login_required
def account():
    """The account page: API tokens, with their expiry, last use and a revoke button."""
    return _account_page(TokenForm())


@bp.post("/account/tokens")
@login_required
def create_token():
    """Issue a token and show it once (it is stored only as a hash)."""
    form = TokenForm()
    if not form.validate_on_submit():
        return _account_page(form, status=400)
    ttl = timedelta(hours=current_app.config["API_TOKEN_TTL_HOURS"])
    token, _row = UserOps.issue_token(db.session, current_user, ttl, name=form.name.data)
    db.session.commit()
    return _account_page(TokenForm(formdata=None), new_token=token)


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400, "The form expired; please try again.")
    if not UserOps.revoke_token(db.session, current_user, token_id):
        abort(404)
    db.session.commit()
    flash("The token was revoked.", "info")
    return redirect(url_for("auth.account"))
