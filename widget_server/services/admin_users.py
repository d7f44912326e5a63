"""Admin-page accounts: hashed passwords, and a lockout after repeated failed logins."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..models import AdminUser
from ..models.types import utcnow

PASSWORD_METHOD = "scrypt"
MIN_PASSWORD_LENGTH = 10
#: Checked against when the user name is unknown, so both cases take the same time.
_DUMMY_HASH = generate_password_hash("not a real password", method=PASSWORD_METHOD)


@dataclass(frozen=True)
class LoginResult:
    """The user when the login succeeded; ``locked_until`` when the account is locked."""

    user: AdminUser | None
    locked_until: datetime | None = None


def _check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            "The password is too short.",
            {"password": [f"Use at least {MIN_PASSWORD_LENGTH} characters."]},
        )


def create_admin(username: str, password: str) -> AdminUser:
    """Create an admin-page user.

    :raise ValidationFailed: empty user name or a password shorter than 10 characters.
    :raise Conflict: the user name is taken.
    """
    username = username.strip()
    if not username or len(username) > 150:
        raise ValidationFailed("Give a user name.", {"username": ["Use 1-150 characters."]})
    _check_new_password(password)
    if db.session.scalar(select(AdminUser.id).where(AdminUser.username == username)):
        raise Conflict(f"The user {username!r} exists.", {"username": ["Taken."]})
    user = AdminUser(
        username=username, password_hash=generate_password_hash(password, method=PASSWORD_METHOD)
    )
    db.session.add(user)
    db.session.commit()
    return user


def set_password(user: AdminUser, password: str) -> None:
    """Replace a user's password and lift any lockout."""
    _check_new_password(password)
    user.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)
    user.failed_logins = 0
    user.locked_until = None
    db.session.commit()


def get_user(user_id: int) -> AdminUser | None:
    return db.session.get(AdminUser, user_id)


def authenticate(username: str, password: str, now: datetime | None = None) -> LoginResult:
    """Check a login; the Nth failure in a row locks the account for a while.

    A locked account refuses even the right password until the lock ends, so guessing gains
    nothing; the lock is per account, the rate limit on the login form is per address.
    """
    now = now or utcnow()
    user = db.session.scalar(select(AdminUser).where(AdminUser.username == username.strip()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return LoginResult(None)
    if user.locked_until is not None and user.locked_until > now:
        return LoginResult(None, user.locked_until)
    if check_password_hash(user.password_hash, password):
        user.failed_logins = 0
        user.locked_until = None
        db.session.commit()
        return LoginResult(user)
    user.failed_logins += 1
    if user.failed_logins >= current_app.config["ADMIN_MAX_FAILED_LOGINS"]:
        user.failed_logins = 0
        user.locked_until = now + timedelta(minutes=current_app.config["ADMIN_LOCKOUT_MINUTES"])
    db.session.commit()
    locked = user.locked_until is not None and user.locked_until > now
    return LoginResult(None, user.locked_until if locked else None)


def random_password() -> str:
    """A password for generated accounts (the demo): about 96 bits."""
    return secrets.token_urlsafe(12)


DEMO_ADMIN = "admin"


def ensure_demo_admin(instance_dir: Path) -> tuple[str, str]:
    """The demo's admin-page login, its password kept in the instance folder (like the demo
    token) so a second run prints the same credentials."""
    path = instance_dir / "demo_admin_password"
    password = path.read_text().strip() if path.exists() else ""
    user = db.session.scalar(select(AdminUser).where(AdminUser.username == DEMO_ADMIN))
    if user is not None and password and check_password_hash(user.password_hash, password):
        return DEMO_ADMIN, password
    password = random_password()
    if user is None:
        create_admin(DEMO_ADMIN, password)
    else:
        set_password(user, password)
    instance_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(password)
    path.chmod(0o600)
    return DEMO_ADMIN, password
