"""HMAC signatures made with a site's secret: who may speak for the shop.

The site secret never reaches a browser. The shop's back end signs with it: order webhooks (the
raw body) and, when the site asks for it, the customer id a logged-in customer's page passes to
``identify``. A browser that only knows the public site key cannot make either signature.
"""

import base64
import hashlib
import hmac

from sqlalchemy import select

from ...errors import Unauthorized
from ...extensions import db
from ...models import Site

PREFIX = "sha256="


def sign(secret: str, message: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of message with the secret>``."""
    return PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_matches(secret: str, message: bytes, presented: str | None) -> bool:
    """Compare in constant time, the whole signature: no prefix, padded or re-cased copy passes
    (a signature is exactly what :func:`sign` makes; nothing is stripped before comparing)."""
    if not presented:
        return False
    try:
        presented_bytes = presented.encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(sign(secret, message).encode(), presented_bytes)


def base64_signature_matches(secret: str, message: bytes, presented: str | None) -> bool:
    """Compare a store platform's signature (Shopify's ``X-Shopify-Hmac-Sha256``,
    WooCommerce's ``X-WC-Webhook-Signature``: the base64 HMAC-SHA256 of the raw body) whole and
    in constant time."""
    if not presented:
        return False
    try:
        presented_bytes = presented.encode("ascii")
    except UnicodeEncodeError:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest())
    return hmac.compare_digest(expected, presented_bytes)


def check_identify(site, request: dict) -> None:
    """Refuse an identify whose customer id is not vouched for by the shop, where it must be.

    ``site`` is the site's cached configuration (its ``id`` and ``settings``).

    A signature, when sent, must be right; when the site's ``require_signed_identify`` setting is
    on, a customer id without one is refused. Without signatures anyone holding the public site
    key could claim any customer id and act as that customer's visitor (see README, Threat model).

    :raise Unauthorized: naming ``customer_signature``.
    """
    customer_id = request.get("customer_id")
    presented = request.get("customer_signature")
    required = bool(site.settings.get("require_signed_identify"))
    if not customer_id:
        if presented:
            raise _refused("A signature was sent without a customer_id.")
        return
    if presented is None and not required:
        return
    secret = db.session.scalar(select(Site.secret).where(Site.id == site.id))
    if not signature_matches(secret, customer_id.encode(), presented):
        raise _refused(
            "Send 'sha256=<hex HMAC-SHA256 of the customer id with the site secret>', "
            "made by the shop's server."
        )


def _refused(detail: str) -> Unauthorized:
    return Unauthorized(
        "The customer id is not signed with this site's secret.",
        {"customer_signature": [detail]},
    )
