"""Log in and out of the admin page."""

import time
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError

from ..extensions import limiter
from ..services.platform import admin_users
from .blueprint import bp, load_admin_user


def _safe_next(target: str | None) -> str:
    """A path of the admin page itself, else the start page: never another host, never a header.

    Browsers drop tabs and line breaks from a URL and read ``\\`` as ``/`` (so ``/\\host`` and
    ``/<TAB>/host`` lead off the site), and a line break in ``Location`` would start a header:
    a target with a control character, a backslash, a scheme or a host is not followed.
    """
    if not target or any(char < " " or char in "\x7f\\" for char in target):
        return url_for("admin.index")
    parts = urlsplit(target)
    on_admin_page = parts.path == "/admin" or parts.path.startswith("/admin/")
    if parts.scheme or parts.netloc or not on_admin_page:
        return url_for("admin.index")
    return target.rstrip("?")


def _clear_session() -> None:
    """Empty the session, and forget the CSRF token this request cached from it."""
    session.clear()
    g.pop("csrf_token", None)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN"], methods=["POST"])
def login():
    """Show the login form; check the user name and password (5 failures lock 15 minutes)."""
    next_url = request.values.get("next")
    if g.admin_user is not None and request.method == "GET":
        return redirect(_safe_next(next_url))
    error = None
    status = 200
    if request.method == "POST":
        username = request.form.get("username", "")
        result = admin_users.authenticate(username, request.form.get("password", ""))
        if result.user is not None:
            _clear_session()  # a fresh session: nothing from before the login carries over
            session["admin_session"] = admin_users.start_session(result.user)
            return redirect(_safe_next(next_url))
        status = 401
        if result.locked_until is not None:
            minutes = max(1, round((result.locked_until.timestamp() - time.time()) / 60))
            error = (
                f"Too many failed logins: this account is locked for {minutes} more minute"
                f"{'s' if minutes != 1 else ''}."
            )
            status = 429
        else:
            error = "The user name or password is wrong."
    return render_template("admin/login.html", error=error, next=next_url), status


@bp.errorhandler(CSRFError)
def csrf_refused(error):
    """A form without its session's CSRF token: refused (400), explained in the owner's words.

    The usual honest cause is a session that ended (logged out in another tab, or expired) while
    the form was open; the page says so and offers the way back.
    """
    load_admin_user()  # the CSRF check runs before the blueprint's login check
    return render_template("admin/csrf_refused.html", reason=error.description), 400


@bp.post("/logout")
def logout():
    """End this admin session on the server too: a copy of its cookie stops working."""
    admin_users.end_session(session.get("admin_session"))
    _clear_session()
    flash("You are logged out.", "info")
    return redirect(url_for("admin.login"))


@bp.post("/logout-everywhere")
def logout_everywhere():
    """End every session of this admin: other browsers, devices and copied cookies."""
    admin_users.end_all_sessions(g.admin_user)
    _clear_session()
    flash("You are logged out everywhere.", "info")
    return redirect(url_for("admin.login"))


@bp.get("/")
def index():
    """The start page: the sites, or the only site's campaigns."""
    from ..services.campaigns import catalog

    sites = catalog.list_sites()
    if len(sites) == 1:
        return redirect(url_for("admin.campaign_list", site_id=sites[0].id))
    return redirect(url_for("admin.site_list"))
