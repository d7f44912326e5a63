"""Admin-page access: login required everywhere, lockout, CSRF, cookie flags, security headers."""

from datetime import timedelta

import pytest

from tests.admin.helpers import PASSWORD, csrf_token, log_in
from widget_server.extensions import db
from widget_server.models import AdminUser
from widget_server.models.types import utcnow
from widget_server.services.platform.admin_users import authenticate, create_admin

ADMIN_PAGES = [
    "/admin/",
    "/admin/sites",
    "/admin/sites/1/campaigns",
    "/admin/sites/1/campaigns/new",
    "/admin/campaigns/1",
    "/admin/campaigns/1/results",
    "/admin/variants/1",
    "/admin/variants/1/preview",
    "/admin/sites/1/funnel",
    "/admin/sites/1/responses",
    "/admin/sites/1/responses.csv",
    "/admin/sites/1/segments.csv",
    "/admin/sites/1/coupons",
]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_pages_without_login_redirect_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=")


@pytest.mark.parametrize(
    "path",
    ["/admin/campaigns/1/start", "/admin/campaigns/1/promote", "/admin/sites", "/admin/logout"],
)
def test_actions_without_login_do_nothing_but_redirect(client, path):
    token = csrf_token(client)
    response = client.post(path, data={"csrf_token": token, "variant_id": "1", "name": "x"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")


def test_login_then_pages_open_and_logout_closes_them(client, owner):
    response = log_in(client)
    assert response.status_code == 302
    assert client.get("/admin/sites").status_code == 200
    token = csrf_token(client, "/admin/sites")
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/admin/sites").status_code == 302


def test_login_returns_to_the_page_asked_for_but_never_off_site(client, owner):
    token = csrf_token(client)
    data = {"username": "owner", "password": PASSWORD, "csrf_token": token}
    response = client.post("/admin/login?next=/admin/sites", data=data)
    assert response.headers["Location"] == "/admin/sites"
    client.post("/admin/logout", data={"csrf_token": csrf_token(client, "/admin/sites")})
    token = csrf_token(client)
    data["csrf_token"] = token
    response = client.post("/admin/login?next=//evil.example/", data=data)
    assert response.headers["Location"] == "/admin/"


def test_wrong_password_is_refused_with_the_same_message_as_unknown_user(client, owner):
    wrong = log_in(client, password="not the password")
    unknown = log_in(client, username="nobody")
    assert wrong.status_code == unknown.status_code == 401
    assert "The user name or password is wrong." in wrong.get_data(as_text=True)
    assert "The user name or password is wrong." in unknown.get_data(as_text=True)
    assert client.get("/admin/sites").status_code == 302


def test_five_failures_lock_the_account_even_against_the_right_password(client, owner):
    for _ in range(4):
        assert log_in(client, password="guess").status_code == 401
    fifth = log_in(client, password="guess")
    assert fifth.status_code == 429
    assert "locked for 15 more minutes" in fifth.get_data(as_text=True)
    right = log_in(client)
    assert right.status_code == 429
    assert client.get("/admin/sites").status_code == 302


def test_lock_ends_after_its_time_and_a_success_resets_the_count(app, owner):
    now = utcnow()
    for _ in range(5):
        assert authenticate("owner", "guess", now).user is None
    assert authenticate("owner", PASSWORD, now + timedelta(minutes=14)).locked_until is not None
    later = now + timedelta(minutes=16)
    assert authenticate("owner", PASSWORD, later).user is not None
    user = db.session.get(AdminUser, owner.id)
    assert user.failed_logins == 0 and user.locked_until is None


def test_passwords_are_stored_hashed_with_scrypt(app, owner):
    user = db.session.get(AdminUser, owner.id)
    assert user.password_hash.startswith("scrypt:")
    assert PASSWORD not in user.password_hash


def test_short_password_and_taken_name_are_refused(app, owner):
    from widget_server.errors import Conflict, ValidationFailed

    with pytest.raises(ValidationFailed):
        create_admin("someone", "short")
    with pytest.raises(Conflict):
        create_admin("owner", "another long password")


def test_form_posted_without_csrf_token_is_refused(page):
    response = page.client.post("/admin/sites", data={"name": "Sneaky", "allowed_origins": ""})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "CSRF" in body and "The form was not sent" in body  # the admin page's own words
    assert "Sneaky" not in page.get("/admin/sites").get_data(as_text=True)


def test_form_posted_with_a_wrong_csrf_token_is_refused(page):
    response = page.client.post(
        "/admin/sites", data={"name": "Sneaky", "csrf_token": page.token[:-4] + "AAAA"}
    )
    assert response.status_code == 400


def test_login_form_needs_csrf_token_too(client, owner):
    response = client.post("/admin/login", data={"username": "owner", "password": PASSWORD})
    assert response.status_code == 400


def test_apis_stay_usable_without_csrf_token(admin):
    response = admin.post("/api/v1/admin/sites", json={"name": "API site"})
    assert response.status_code == 201


def test_session_cookie_is_httponly_and_samesite_lax(client, owner):
    response = log_in(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_session_cookie_is_secure_when_configured(app, owner):
    app.config["SESSION_COOKIE_SECURE"] = True
    client = app.test_client()
    response = log_in(client)
    assert "Secure" in response.headers["Set-Cookie"]


def test_admin_responses_carry_strict_security_headers(page):
    response = page.get("/admin/sites")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_pages_have_no_inline_script_or_style(page, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site)
    paths = [
        "/admin/sites",
        f"/admin/sites/{site['id']}/campaigns",
        f"/admin/campaigns/{campaign['id']}",
        f"/admin/campaigns/{campaign['id']}/results",
        f"/admin/variants/{campaign['variants'][0]['id']}",
        f"/admin/sites/{site['id']}/funnel",
        f"/admin/sites/{site['id']}/responses",
    ]
    for path in paths:
        html = page.get(path).get_data(as_text=True)
        assert " style=" not in html, path
        assert "<style" not in html, path
        for tag in html.split("<script")[1:]:
            opening = tag.split(">", 1)[0]
            assert "src=" in opening or 'type="application/json"' in opening, (path, opening)
