"""Admin-page accounts: hashed passwords, server-side sessions, a lockout after failed logins."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import delete, or_, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from ...errors import Conflict, ValidationFailed
from ...extensions import db
from ...models import AdminSession, AdminUser
from ...models.types import utcnow

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
    """Replace a user's password, lift any lockout and end every session of the user."""
    _check_new_password(password)
    user.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)
    user.failed_logins = 0
    user.locked_until = None
    _delete_sessions(user.id)
    db.session.commit()


def authenticate(username: str, password: str, now: datetime | None = None) -> LoginResult:
    """Check a login; the Nth failure in a row locks the account and ends its sessions.

    A locked account refuses even the right password until the lock ends, so guessing gains
    nothing; the lock is per account, the rate limit on the login form is per address.

    Each attempt is counted before its password is checked, by one ``UPDATE ... RETURNING`` that
    hands every attempt its own number, so parallel guesses cannot lose increments (a read, add and
    write let 30 parallel failures leave a count of 2) and only the first N of a burst are checked
    at all: the ones numbered beyond N fail unchecked and lock the account.
    """
    now = now or utcnow()
    max_failures = current_app.config["ADMIN_MAX_FAILED_LOGINS"]
    # The UPDATE is the transaction's first statement: SQLite cannot turn a read into a write
    # once another connection has written, so no SELECT may come before it.
    attempt = db.session.execute(
        update(AdminUser)
        .where(
            AdminUser.username == username.strip(),
            or_(AdminUser.locked_until.is_(None), AdminUser.locked_until <= now),
        )
        .values(failed_logins=AdminUser.failed_logins + 1)
        .returning(AdminUser.id, AdminUser.failed_logins, AdminUser.password_hash)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    db.session.commit()
    if attempt is None:
        return _refused_without_attempt(username, password, now)
    if attempt.failed_logins <= max_failures and check_password_hash(
        attempt.password_hash, password
    ):
        _set_lock(attempt.id, None)
        db.session.commit()
        return LoginResult(db.session.get(AdminUser, attempt.id))
    if attempt.failed_logins < max_failures:
        return LoginResult(None)
    locked_until = now + timedelta(minutes=current_app.config["ADMIN_LOCKOUT_MINUTES"])
    _set_lock(attempt.id, locked_until)
    _delete_sessions(attempt.id)
    db.session.commit()
    return LoginResult(None, locked_until)


def _refused_without_attempt(username: str, password: str, now: datetime) -> LoginResult:
    """An unknown user name (checked against a dummy hash, to take the same time) or a locked
    account."""
    user = db.session.scalar(select(AdminUser).where(AdminUser.username == username.strip()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return LoginResult(None)
    if user.locked_until is not None and user.locked_until > now:
        return LoginResult(None, user.locked_until)
    return LoginResult(None)  # the lock was lifted (a new password) while this attempt ran


def _set_lock(user_id: int, locked_until: datetime | None) -> None:
    """Start a new count of failures, locked until ``locked_until`` (None: not locked)."""
    db.session.execute(
        update(AdminUser)
        .where(AdminUser.id == user_id)
        .values(failed_logins=0, locked_until=locked_until)
        .execution_options(synchronize_session=False)
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _session_cutoff(now: datetime) -> datetime:
    """Sessions started at or before this have expired (``ADMIN_SESSION_HOURS``)."""
    return now - timedelta(hours=current_app.config["ADMIN_SESSION_HOURS"])


def start_session(user: AdminUser, now: datetime | None = None) -> str:
    """Record a new login of ``user`` and return its token for the signed session cookie.

    Expired sessions of every user are deleted on the way, so the table holds live logins only.
    """
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    db.session.execute(delete(AdminSession).where(AdminSession.created_at <= _session_cutoff(now)))
    db.session.add(AdminSession(token_hash=_token_hash(token), user_id=user.id, created_at=now))
    db.session.commit()
    return token


def session_user(token: object, now: datetime | None = None) -> AdminUser | None:
    """The user of a live session: one that was started, not ended, and is not too old."""
    if not isinstance(token, str) or not token:
        return None
    now = now or utcnow()
    return db.session.scalar(
        select(AdminUser)
        .join(AdminSession, AdminSession.user_id == AdminUser.id)
        .where(
            AdminSession.token_hash == _token_hash(token),
            AdminSession.created_at > _session_cutoff(now),
        )
    )


def end_session(token: object) -> None:
    """Log out one session: its cookie, wherever a copy of it is, no longer opens the page."""
    if isinstance(token, str) and token:
        db.session.execute(
            delete(AdminSession).where(AdminSession.token_hash == _token_hash(token))
        )
        db.session.commit()


def end_all_sessions(user: AdminUser) -> None:
    """Log ``user`` out everywhere: every browser and every copied cookie."""
    _delete_sessions(user.id)
    db.session.commit()


def _delete_sessions(user_id: int) -> None:
    db.session.execute(delete(AdminSession).where(AdminSession.user_id == user_id))


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
