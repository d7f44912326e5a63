"""Admin API bearer tokens: handed out once, stored only as a SHA-256."""

import hashlib
import secrets

from sqlalchemy import select

from ...extensions import db
from ...models import AdminToken
from ...models.types import utcnow


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(name: str) -> str:
    """Make a new token and return it in clear; this is the only time it is seen."""
    token = "fc_" + secrets.token_urlsafe(32)
    db.session.add(AdminToken(name=name, token_hash=_digest(token)))
    db.session.commit()
    return token


def token_is_valid(token: str) -> bool:
    """True for a known, unrevoked token.

    The lookup is by SHA-256 of the presented token, so its time does not depend on how much of a
    real token an attacker guessed.
    """
    if not token or len(token) > 200:
        return False
    row = db.session.scalar(select(AdminToken).where(AdminToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None:
        return False
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 300:
        row.last_used_at = now
        db.session.commit()
    return True
