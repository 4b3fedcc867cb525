"""Accounts: sign up, sign in (atomic lockout, throttled), sign out (every device), and the
account page: API tokens, password change, account deletion."""

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
from flask_login import current_user, login_required, logout_user
from sqlalchemy.exc import IntegrityError

from models import db
from routes.api_common import MAX_ID
from routes.web_forms import (
    ChangePasswordForm,
    ConfirmForm,
    DeleteAccountForm,
    SignInForm,
    SignUpForm,
    TokenForm,
)
from utils import passwords
from utils.auth import check_credentials, sign_in
from utils.db_operations import UserOps

bp = Blueprint("auth", __name__)

SIGN_IN_REFUSED = ("Wrong e-mail or password, or too many attempts on this account: "
                   "check them, or wait a few minutes and try again.")
SIGNED_UP = "Thank you. Sign in with your e-mail and password to continue."


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
    """Create an account. The answer is the same whether the e-mail was free or taken (and
    costs one password hash either way), so sign-up never tells who has an account."""
    if current_user.is_authenticated:
        return redirect(url_for("web.dashboard"))
    form = SignUpForm()
    if form.validate_on_submit():
        if UserOps.by_email(db.session, form.email.data) is None:
            try:
                UserOps.create(db.session, form.email.data, form.password.data)
                db.session.commit()
            except IntegrityError:
                db.session.rollback()  # created meanwhile: answer as for a taken address
        else:
            passwords.hash_password(form.password.data)  # the same work as creating one
        flash(SIGNED_UP, "success")
        return redirect(url_for("auth.login", next=url_for("web.new_batch")))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/signup.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in. Wrong, unknown and locked accounts get the same answer in the same time."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = SignInForm()
    status = 200
    if form.validate_on_submit():
        user = check_credentials(form.email.data, form.password.data)
        if user is not None:
            sign_in(user, remember=bool(form.remember.data))
            return redirect(safe_next(request.args.get("next")))
        form.form_errors.append(SIGN_IN_REFUSED)
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout():
    """Sign out on every device: the session version moves on, so every older session and
    remember cookie of the account stops working."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400, "The form expired; please try again.")
    if current_user.is_authenticated:
        UserOps.bump_session_version(db.session, current_user)
        db.session.commit()
    logout_user()
    flash("You are signed out on every device.", "info")
    return redirect(url_for("auth.login"))


def _account_page(token_form: TokenForm | None = None, new_token: str | None = None,
                  status: int = 200, password_form: ChangePasswordForm | None = None,
                  delete_form: DeleteAccountForm | None = None):
    tokens = UserOps.tokens(db.session, current_user)
    return render_template(
        "auth/account.html", tokens=tokens, new_token=new_token,
        token_form=token_form or TokenForm(formdata=None),
        password_form=password_form or ChangePasswordForm(formdata=None),
        delete_form=delete_form or DeleteAccountForm(formdata=None)), status


@bp.get("/account")
@login_required
def account():
    """The account page: API tokens, password change, sign out everywhere, deletion."""
    return _account_page()


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
    return _account_page(new_token=token)


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400, "The form expired; please try again.")
    if not 1 <= token_id <= MAX_ID or not UserOps.revoke_token(db.session, current_user,
                                                                token_id):
        abort(404)
    db.session.commit()
    flash("The token was revoked.", "info")
    return redirect(url_for("auth.account"))


@bp.post("/account/password")
@login_required
def change_password():
    """A new password (the current one required); every other session is signed out."""
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return _account_page(password_form=form, status=400)
    remembered = bool(request.cookies.get(current_app.config.get("REMEMBER_COOKIE_NAME",
                                                                   "remember_token")))
    user = check_credentials(current_user.email, form.current.data)
    if user is None:
        form.current.errors = ["The current password is wrong (or the account is locked "
                               "for a few minutes)."]
        return _account_page(password_form=form, status=400)
    UserOps.set_password(db.session, user, form.password.data)
    db.session.commit()
    sign_in(user, remember=remembered)  # this browser stays signed in, with new cookies
    flash("Your password was changed; other devices are signed out.", "success")
    return redirect(url_for("auth.account"))


@bp.post("/account/delete")
@login_required
def delete_account():
    """Delete the account and all its data (batches, sites, pages, events, tokens) in one
    transaction; the password is required."""
    form = DeleteAccountForm()
    if not form.validate_on_submit():
        return _account_page(delete_form=form, status=400)
    user = check_credentials(current_user.email, form.confirm_password.data)
    if user is None:
        form.confirm_password.errors = ["The password is wrong (or the account is locked for a few "
                                "minutes)."]
        return _account_page(delete_form=form, status=400)
    UserOps.delete_account(db.session, user.id)
    db.session.commit()
    logout_user()
    flash("Your account and all its data were deleted.", "info")
    return redirect(url_for("auth.login"))
