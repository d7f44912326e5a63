"""Login's ``next`` parameter: only a path of the admin page is followed, so a crafted link can
neither send a fresh login to another site nor write a header into the redirect."""

import pytest

from tests.admin.helpers import PASSWORD, csrf_token, log_in
from widget_server.services.platform.admin_users import create_admin

HOSTILE_NEXT = [
    "/admin/\r\nSet-Cookie: planted=1",
    "/admin/sites\nSet-Cookie: planted=1",
    "/admin/\rLocation: https://evil.example/",
    "/admin/\x00",
    "/admin/\x7f",
    "/\t/evil.example/admin/",  # browsers drop the tab: //evil.example
    "/admin\t/../\t/evil.example",
    "//evil.example/admin/",
    "///evil.example/admin/",
    "/\\evil.example/admin/",  # browsers read \ as /
    "\\\\evil.example/admin/",
    "/admin/\\..\\..\\/evil.example",
    "https://evil.example/admin/",
    "http:evil.example/admin/",
    "HTTPS://evil.example/admin",
    "javascript:alert(1)//admin/",
    " //evil.example/admin/",
    "evil.example/admin/",
    "/adminevil",
    "/api/v1/admin/sites",
    "",
]


@pytest.fixture
def owner(app):
    return create_admin("owner", PASSWORD)


def login_with_next(client, target: str):
    token = csrf_token(client)
    data = {"username": "owner", "password": PASSWORD, "csrf_token": token, "next": target}
    return client.post("/admin/login", data=data)


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_login_never_follows_a_next_off_the_admin_page(client, owner, target):
    response = login_with_next(client, target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    assert "planted" not in str(response.headers)


def test_logged_in_visit_to_login_never_follows_a_next_off_the_admin_page(client, owner):
    assert log_in(client).status_code == 302
    for target in HOSTILE_NEXT:
        response = client.get("/admin/login", query_string={"next": target})
        assert response.status_code == 302, target
        assert response.headers["Location"] == "/admin/", target
        assert "planted" not in str(response.headers), target


@pytest.mark.parametrize(
    "target", ["/admin/sites", "/admin/sites/1/responses?page=2&completed=1", "/admin"]
)
def test_login_returns_to_an_admin_page_asked_for(client, owner, target):
    assert login_with_next(client, target).headers["Location"] == target


def test_login_form_carries_a_hostile_next_only_as_escaped_text(client, owner):
    page = client.get("/admin/login", query_string={"next": '/admin/"><script>x()</script>'})
    html = page.get_data(as_text=True)
    assert "<script>x()" not in html
    assert "&lt;script&gt;" in html or "&#34;&gt;&lt;script" in html
