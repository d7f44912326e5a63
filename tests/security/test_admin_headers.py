"""Every answer under /admin carries the admin page's security headers, even ones no view made."""

import pytest

from tests.admin.helpers import PASSWORD, log_in
from widget_server.services.platform.admin_users import create_admin


def assert_admin_headers(response, frame_ancestors="'none'"):
    csp = response.headers.get("Content-Security-Policy", "")
    directives = dict(
        (part.strip().split(" ", 1) + [""])[:2] for part in csp.split(";") if part.strip()
    )
    assert directives.get("frame-ancestors") == frame_ancestors, csp
    assert directives.get("script-src") == "'self'"
    assert directives.get("object-src") == "'none'"
    assert directives.get("base-uri") == "'none'"
    assert directives.get("form-action") == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    expected_frame_options = "DENY" if frame_ancestors == "'none'" else "SAMEORIGIN"
    assert response.headers["X-Frame-Options"] == expected_frame_options
    assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.parametrize(
    "path",
    ["/admin/login", "/admin/", "/admin", "/admin/sites", "/admin/no-such-page", "/admin/x/1"],
)
def test_admin_answers_carry_security_headers_logged_out(client, path):
    assert_admin_headers(client.get(path))


def test_refused_login_carries_security_headers(client):
    assert_admin_headers(client.post("/admin/login", data={"username": "x", "password": "y"}))


@pytest.fixture
def logged_in(client):
    create_admin("owner", PASSWORD)
    assert log_in(client).status_code == 302
    return client


def test_admin_pages_carry_security_headers_logged_in(logged_in, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site)
    for path in [
        "/admin/sites",
        f"/admin/sites/{site['id']}/campaigns",
        f"/admin/campaigns/{campaign['id']}",
        f"/admin/variants/{campaign['variants'][0]['id']}",
        "/admin/campaigns/999999",
    ]:
        assert_admin_headers(logged_in.get(path))


def test_only_the_variant_preview_may_be_framed_and_only_by_the_admin_itself(
    logged_in, make_site, make_campaign
):
    campaign = make_campaign(make_site())
    preview = logged_in.get(f"/admin/variants/{campaign['variants'][0]['id']}/preview")
    assert preview.status_code == 200
    assert_admin_headers(preview, frame_ancestors="'self'")


def test_admin_api_answers_are_never_cached_nor_sniffed(admin, make_site):
    site = make_site()
    for response in (admin.get(f"/api/v1/admin/sites/{site['id']}"), admin.get("/api/v1/admin/x")):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/static/widget.js", "/healthz"])
def test_every_answer_is_nosniff(client, path):
    with client.get(path) as response:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
