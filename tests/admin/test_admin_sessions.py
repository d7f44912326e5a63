"""Admin sessions live on the server: logout, "log out everywhere", a password change and a
lockout end them for every copy of the cookie, and sessions and locks expire on time."""

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from tests.admin.helpers import PASSWORD, csrf_token, log_in
from widget_server.extensions import db
from widget_server.models import AdminSession, AdminUser, Campaign
from widget_server.models.types import utcnow
from widget_server.services.platform.admin_users import create_admin, set_password


class Browser(FlaskClient):
    """A browser of its own: each request runs in a fresh app context, as on a server.

    A plain test client reuses the test's app context, so two clients would share ``g`` (and
    with it the CSRF token one of them cached).
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


def browser_of(app):
    return Browser(app, app.response_class, use_cookies=True)


def logged_in_client(app, username="owner", password=PASSWORD):
    """A fresh browser logged in as ``username``."""
    browser = browser_of(app)
    assert log_in(browser, username, password).status_code == 302
    return browser


def copy_of_cookie(app, browser):
    """Another client carrying a copy of ``browser``'s session cookie (a captured cookie)."""
    name = app.config["SESSION_COOKIE_NAME"]
    thief = browser_of(app)
    thief.set_cookie(name, browser.get_cookie(name).value)
    return thief


def is_logged_in(browser) -> bool:
    return browser.get("/admin/sites").status_code == 200


def log_out(browser, path="/admin/logout"):
    return browser.post(path, data={"csrf_token": csrf_token(browser, "/admin/sites")})


def age_sessions(by: timedelta) -> None:
    """Move every stored login start ``by`` into the past."""
    for login in db.session.scalars(db.select(AdminSession)):
        login.created_at -= by
    db.session.commit()


def test_captured_cookie_cannot_pause_a_campaign_after_logout(app, owner, make_site, make_campaign):
    campaign = make_campaign(make_site())
    browser = logged_in_client(app)
    thief = copy_of_cookie(app, browser)
    token = csrf_token(thief, "/admin/sites")  # the thief read a form while the login was live
    assert is_logged_in(thief)

    assert log_out(browser).status_code == 302

    response = thief.post(f"/admin/campaigns/{campaign['id']}/pause", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")
    db.session.rollback()  # read what the requests committed
    assert db.session.get(Campaign, campaign["id"]).status == "running"
    assert not is_logged_in(thief)


def test_logout_ends_only_the_session_it_is_sent_from(app, owner):
    laptop = logged_in_client(app)
    phone = logged_in_client(app)
    log_out(laptop)
    assert not is_logged_in(laptop)
    assert is_logged_in(phone)


def test_log_out_everywhere_ends_every_session_of_that_admin_only(app, owner):
    create_admin("colleague", PASSWORD)
    laptop = logged_in_client(app)
    phone = logged_in_client(app)
    stolen = copy_of_cookie(app, phone)
    colleague = logged_in_client(app, "colleague")

    response = log_out(laptop, "/admin/logout-everywhere")

    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login"
    assert "logged out everywhere" in laptop.get("/admin/login").get_data(as_text=True)
    assert not is_logged_in(laptop)
    assert not is_logged_in(phone)
    assert not is_logged_in(stolen)
    assert is_logged_in(colleague)


def test_log_out_everywhere_needs_the_csrf_token(app, owner):
    laptop = logged_in_client(app)
    phone = logged_in_client(app)
    assert laptop.post("/admin/logout-everywhere").status_code == 400
    assert is_logged_in(laptop) and is_logged_in(phone)


def test_log_out_everywhere_without_a_login_only_redirects_to_login(app, owner):
    phone = logged_in_client(app)
    stranger = browser_of(app)
    response = stranger.post("/admin/logout-everywhere", data={"csrf_token": csrf_token(stranger)})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")
    assert is_logged_in(phone)


def test_every_page_offers_log_out_everywhere_as_a_form_post(app, owner):
    html = logged_in_client(app).get("/admin/sites").get_data(as_text=True)
    assert 'formaction="/admin/logout-everywhere"' in html
    form = html.split('<form class="logout"', 1)[1].split("</form>", 1)[0]
    assert 'method="post"' in form and 'name="csrf_token"' in form


def test_password_change_ends_every_session(app, owner):
    laptop = logged_in_client(app)
    stolen = copy_of_cookie(app, laptop)
    set_password(db.session.get(AdminUser, owner.id), "a brand new password")
    assert not is_logged_in(laptop)
    assert not is_logged_in(stolen)
    assert is_logged_in(logged_in_client(app, password="a brand new password"))


def test_lockout_ends_every_session_of_the_locked_account(app, owner):
    create_admin("colleague", PASSWORD)
    laptop = logged_in_client(app)
    colleague = logged_in_client(app, "colleague")
    attacker = browser_of(app)
    statuses = [log_in(attacker, password="guess").status_code for _ in range(5)]
    assert statuses[-1] == 429
    assert not is_logged_in(laptop)
    assert is_logged_in(colleague)


def test_session_is_refused_once_older_than_admin_session_hours(app, owner):
    app.config["ADMIN_SESSION_HOURS"] = 2
    browser = logged_in_client(app)
    age_sessions(timedelta(hours=2) - timedelta(minutes=1))
    assert is_logged_in(browser)
    age_sessions(timedelta(minutes=2))
    response = browser.get("/admin/sites")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")


def test_expired_sessions_are_deleted_at_the_next_login(app, owner):
    app.config["ADMIN_SESSION_HOURS"] = 2
    logged_in_client(app)
    age_sessions(timedelta(hours=3))
    logged_in_client(app)
    ages = [utcnow() - row.created_at for row in db.session.scalars(db.select(AdminSession))]
    assert len(ages) == 1 and ages[0] < timedelta(minutes=1)


def test_cookie_stores_no_user_id_and_the_database_no_usable_token(app, owner):
    """The cookie names a session, not a user: a forged or replayed user id opens nothing."""
    browser = logged_in_client(app)
    with browser.session_transaction() as session:
        assert "admin_user_id" not in session
        token = session["admin_session"]
        session["admin_session"] = token[:-2] + "xx"
    stored = db.session.scalars(db.select(AdminSession.token_hash)).all()
    assert token not in stored and len(stored) == 1
    assert not is_logged_in(browser)


def set_lock(until) -> None:
    db.session.execute(update(AdminUser).values(locked_until=until))
    db.session.commit()


def test_locked_account_stays_locked_until_its_lock_ends_then_logs_in(app, owner):
    browser = browser_of(app)
    for _ in range(5):
        response = log_in(browser, password="guess")
    assert response.status_code == 429

    set_lock(utcnow() + timedelta(seconds=30))  # the lock is about to end
    assert log_in(browser).status_code == 429
    assert not is_logged_in(browser)

    set_lock(utcnow() - timedelta(seconds=1))  # the lock ended a second ago
    assert log_in(browser).status_code == 302
    assert is_logged_in(browser)


@pytest.mark.parametrize("minutes", [7, 1])
def test_lockout_lasts_admin_lockout_minutes(app, owner, minutes):
    app.config["ADMIN_LOCKOUT_MINUTES"] = minutes
    browser = browser_of(app)
    for _ in range(5):
        response = log_in(browser, password="guess")
    unit = "minutes" if minutes != 1 else "minute"
    assert f"locked for {minutes} more {unit}" in response.get_data(as_text=True)
    locked_until = db.session.scalar(db.select(AdminUser.locked_until))
    assert abs(locked_until - utcnow() - timedelta(minutes=minutes)) < timedelta(seconds=30)
