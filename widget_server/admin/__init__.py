"""The store owner's admin page under ``/admin``: server-rendered, cookie session, CSRF on forms.

Every view needs a logged-in admin (``funnelcake create-admin``) except the login form itself.
Responses carry a strict Content-Security-Policy: scripts and styles only from ``/static``, no
framing except the previews of variants and templates, which the editor frames from the same origin.
"""

from . import (  # noqa: F401  (register their views)
    auth,
    campaigns,
    funnel,
    gallery,
    integrations,
    responses,
    results,
    webhooks,
)
from .blueprint import bp

__all__ = ["bp"]
