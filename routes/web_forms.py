"""Flask-WTF forms of the browser pages (each carries its CSRF token)."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, StringField, TextAreaField
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from utils.batch_input import DEFAULT_MAX_PAGES, MAX_NAME_LENGTH, MAX_PAGES_RANGE
from utils.passwords import MAX_PASSWORD_LENGTH, password_problem

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def strong_password(_form: FlaskForm, field: PasswordField) -> None:
    """The password policy of utils/passwords.py (12+ characters, not a common one)."""
    problem = password_problem(field.data or "")
    if problem:
        raise ValidationError(problem)


class SignUpForm(FlaskForm):
    email = StringField("E-mail", validators=[
        DataRequired(), Length(max=254),
        Regexp(EMAIL_PATTERN, message="Enter an e-mail address like name@example.com.")])
    password = PasswordField("Password", validators=[DataRequired(), strong_password])
    confirm = PasswordField("Repeat the password", validators=[
        DataRequired(), EqualTo("password", message="The passwords do not match.")])


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[
        DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])
    password = PasswordField("New password", validators=[DataRequired(), strong_password])
    confirm = PasswordField("Repeat the new password", validators=[
        DataRequired(), EqualTo("password", message="The passwords do not match.")])


class DeleteAccountForm(FlaskForm):
    confirm_password = PasswordField("Your password", validators=[
        DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])


class SignInForm(FlaskForm):
    email = StringField("E-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    remember = BooleanField("Keep me signed in")


class TokenForm(FlaskForm):
    name = StringField("Token name", default="api", validators=[DataRequired(), Length(max=100)])


class ConfirmForm(FlaskForm):
    """A button-only form (sign out, cancel, delete, revoke): just the CSRF token."""


class NewBatchForm(FlaskForm):
    name = StringField("Batch name (optional)", validators=[Optional(),
                                                            Length(max=MAX_NAME_LENGTH)])
    urls = TextAreaField("Competitor sites", validators=[
        DataRequired(message="Enter at least one site.")])
    own_url = StringField("Your own site (optional)", validators=[Optional(), Length(max=2048)])
    max_pages = IntegerField("Pages to crawl per site", default=DEFAULT_MAX_PAGES, validators=[
        InputRequired(message="Enter a number of pages."),
        NumberRange(*MAX_PAGES_RANGE,
                    message=f"Choose from {MAX_PAGES_RANGE[0]} to {MAX_PAGES_RANGE[1]} pages.")])


class RenameSiteForm(FlaskForm):
    name = StringField("Name", validators=[Optional(), Length(max=200)])
