"""The admin blueprint and what every admin answer goes through: login, CSP and headers."""

from flask import Blueprint, g, redirect, request, session, url_for

from ..vocabulary import PHASE_STATUSES

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="../templates")

#: Views a visitor may reach without logging in.
PUBLIC_ENDPOINTS = {"admin.login"}
#: Views that the admin page itself frames (the live preview of a variant or a template).
FRAMEABLE_ENDPOINTS = {
    "admin.preview_frame",
    "admin.preview_frame_unsaved",
    "admin.template_preview_frame",
}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors {ancestors}"
)


def load_admin_user():
    """The user of a live admin session (``g.admin_user``), or None.

    The signed cookie only names the session; the database says whether it is still live (not
    logged out, not revoked, younger than ``ADMIN_SESSION_HOURS``).
    """
    from ..services.platform.admin_users import session_user

    g.admin_user = session_user(session.get("admin_session"))
    return g.admin_user


@bp.before_request
def require_login():
    """Send anyone without a live admin session to the login form, then back."""
    if load_admin_user() is None and request.endpoint not in PUBLIC_ENDPOINTS:
        session.pop("admin_session", None)
        target = request.full_path if request.method == "GET" else None
        return redirect(url_for("admin.login", next=target))
    return None


@bp.after_app_request
def security_headers(response):
    """Strict CSP, no sniffing, no referrer leaks, and no caching of private pages.

    Registered for the whole app so that answers under ``/admin`` that no admin view made (a 404,
    the redirect of ``/admin`` to ``/admin/``) carry them too. Every answer gets ``nosniff``, and
    the admin API's (which show site secrets) are never cached.
    """
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.path.startswith("/api/v1/admin/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if request.path != "/admin" and not request.path.startswith("/admin/"):
        return response
    frameable = request.endpoint in FRAMEABLE_ENDPOINTS
    response.headers["Content-Security-Policy"] = CSP.format(
        ancestors="'self'" if frameable else "'none'"
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN" if frameable else "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.app_template_global()
def dig(state, path: str, default=""):
    """The value at a dotted path of a form state (``content.steps.0.question``)."""
    node = state
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return default
    return node


# The statuses whose forms ask what a phase-starting change does to the assignments.
bp.add_app_template_global(PHASE_STATUSES, "phase_statuses")
