"""CORS for the public API: only a site's allowed origins may read the answers.

The snippet sends ``text/plain`` bodies, so its calls are CORS-simple and need no preflight; a
preflight from an allowed origin is still answered, for developers calling with JSON.
"""

from flask import Response, g, request
from sqlalchemy.exc import SQLAlchemyError

from ..errors import Forbidden, NotFound
from ..extensions import db
from ..services.campaigns.site_config import SiteConfig, get_site_config

ALLOWED_HEADERS = "Content-Type"
MAX_AGE_S = "86400"


def origin_allowed(site: SiteConfig, origin: str | None) -> bool:
    """No ``Origin`` (a server-to-server call) is allowed; a browser's must be on the list."""
    if not origin:
        return True
    return "*" in site.allowed_origins or origin.lower().rstrip("/") in site.allowed_origins


def check_origin(site: SiteConfig) -> None:
    """:raise Forbidden: the browser's page is on an origin this site did not allow."""
    origin = request.headers.get("Origin")
    if not origin_allowed(site, origin):
        raise Forbidden(
            "This origin is not allowed for this site.",
            {"origin": [f"{origin} is not in the site's allowed_origins."]},
        )


def add_cors_headers(site: SiteConfig | None, response: Response) -> Response:
    origin = request.headers.get("Origin")
    response.vary.add("Origin")
    if site is None and origin and response.status_code == 429:
        site = _site_of_limited_request()
    if site is not None and origin and origin_allowed(site, origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = MAX_AGE_S
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    return response


def _site_of_limited_request() -> SiteConfig | None:
    """The site of a request the rate limiter refused before the site was looked up.

    An allowed origin must be able to read the 429 and its Retry-After, or the browser reports a
    network error instead. Only for 429s: a 503 means the database is down, and asking it again
    would double the time to answer.
    """
    site_key = g.get("site_key")
    if not site_key:
        return None
    try:
        return get_site_config(site_key)
    except NotFound:
        return None
    except SQLAlchemyError:
        db.session.rollback()
        return None
