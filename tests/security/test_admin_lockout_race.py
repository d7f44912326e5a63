"""The login lockout under parallel guesses: every failure counts, however the requests race.

A read-add-write counter let 30 parallel wrong passwords leave ``failed_logins = 2`` and the
account open. Each thread here is a browser of its own (its own test client, app context and
database session), released together by a barrier.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from tests.admin.helpers import PASSWORD, csrf_token, log_in
from widget_server.extensions import db
from widget_server.models import AdminUser
from widget_server.models.types import utcnow
from widget_server.services.platform import admin_users

GUESSES = 30


@pytest.fixture
def owner(app):
    return admin_users.create_admin("owner", PASSWORD)


@pytest.fixture
def checked_passwords(monkeypatch):
    """How many real password hashes were checked (the spy calls the real check)."""
    checked = []
    real_check = admin_users.check_password_hash

    def counting_check(password_hash, password):
        if password_hash != admin_users._DUMMY_HASH:
            checked.append(password)
        return real_check(password_hash, password)

    monkeypatch.setattr(admin_users, "check_password_hash", counting_check)
    return checked


def guess_in_parallel(app, passwords: list[str]) -> list[int]:
    """Post every password at once from its own browser; the answers' status codes."""
    ready = threading.Barrier(len(passwords))

    def guess(password):
        browser = app.test_client()
        token = csrf_token(browser)
        ready.wait(timeout=60)
        data = {"username": "owner", "password": password, "csrf_token": token}
        return browser.post("/admin/login", data=data).status_code

    with ThreadPoolExecutor(max_workers=len(passwords)) as pool:
        return list(pool.map(guess, passwords))


def test_parallel_wrong_passwords_lock_the_account_after_five(app, owner, checked_passwords):
    statuses = guess_in_parallel(app, [f"guess {n}" for n in range(GUESSES)])

    assert sorted(statuses) == [401] * 4 + [429] * (GUESSES - 4)
    assert len(checked_passwords) == 5  # guesses beyond the fifth are refused unchecked
    db.session.rollback()
    locked_until = db.session.scalar(select(AdminUser.locked_until))
    assert locked_until is not None and locked_until > utcnow()
    assert log_in(app.test_client()).status_code == 429


def test_parallel_failures_are_each_counted(app, owner):
    """Three at once leave a count of three (no lost update); two more lock the account."""
    assert guess_in_parallel(app, ["guess a", "guess b", "guess c"]) == [401, 401, 401]
    db.session.rollback()
    assert db.session.scalar(select(AdminUser.failed_logins)) == 3

    assert sorted(guess_in_parallel(app, ["guess d", "guess e"])) == [401, 429]
    assert log_in(app.test_client()).status_code == 429
