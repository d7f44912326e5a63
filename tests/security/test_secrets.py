"""What each key can do: the public site key reads nothing, the site secret only signs
orders, the admin token and the admin login are the only ways in, and every secret is compared
whole: a wrong, shortened, lengthened or re-cased one is refused."""

import hashlib
import hmac
import json

import pytest
from sqlalchemy import func, select, update

from tests.admin.helpers import PASSWORD, log_in
from tests.api.helpers import decide, event, send_events
from tests.rewards.helpers import post_order, signature
from widget_server.extensions import db
from widget_server.models import AdminToken, Event, Order
from widget_server.services.platform import signatures
from widget_server.services.platform.admin_users import create_admin
from widget_server.services.platform.tokens import create_token

ORDER = {"order_id": "o-1", "total": "19.90", "currency": "EUR"}
ADMIN_SITES = "/api/v1/admin/sites"


def _variations(secret: str) -> dict[str, str]:
    """A secret changed the ways a guesser or a sloppy comparison would let through."""
    return {
        "one-char-short": secret[:-1],
        "half": secret[: len(secret) // 2],
        "one-char-more": secret + "A",
        "last-char-changed": secret[:-1] + ("B" if secret[-1] != "B" else "C"),
        "upper-case": secret.upper() if secret.upper() != secret else secret.lower(),
        "padded": f" {secret}x ",
        "empty": "",
    }


# --- the site key -------------------------------------------------------------------------------


@pytest.fixture
def wheel_site(admin, make_site, make_campaign):
    """A site with a wheel whose slices hand out a fixed code and codes from a pool."""
    site = make_site()
    pool = admin.post(f"/api/v1/admin/sites/{site['id']}/coupon-pools", json={"name": "P"}).json
    admin.post(f"/api/v1/admin/coupon-pools/{pool['id']}/import", json={"codes": ["POOLCODE-1"]})
    slices = [
        {
            "label": "Free",
            "color": "#111111",
            "weight": 3,
            "reward": {"type": "code", "code": "FIXED-SECRET"},
        },
        {
            "label": "10%",
            "color": "#222222",
            "weight": 1,
            "reward": {"type": "pool", "pool_id": pool["id"]},
        },
        {"label": "No luck", "color": "#333333", "weight": 1, "reward": {"type": "none"}},
    ]
    variants = [{"name": "A", "is_control": True, "content": {"title": "Spin", "slices": slices}}]
    make_campaign(site, kind="wheel", name="Wheel", variants=variants)
    return site


def test_site_key_is_no_admin_credential(client, wheel_site):
    for credential in (wheel_site["site_key"], wheel_site["secret"]):
        for path in ("/api/v1/admin/sites", f"/api/v1/admin/sites/{wheel_site['id']}"):
            response = client.get(path, headers={"Authorization": f"Bearer {credential}"})
            assert response.status_code == 401
            assert "WWW-Authenticate" in response.headers
    assert client.get(f"/api/v1/admin/sites?token={wheel_site['site_key']}").status_code == 401


@pytest.mark.parametrize("suffix", ["", "/campaigns", "/config", "/decide", "/events", "/orders"])
def test_site_key_opens_no_read_endpoint(client, wheel_site, suffix):
    response = client.get(f"/api/v1/sites/{wheel_site['site_key']}{suffix}")
    assert response.status_code in (404, 405)
    assert wheel_site["secret"] not in response.get_data(as_text=True)


def test_decide_shows_no_code_pool_weight_or_secret(client, wheel_site):
    answer = decide(client, wheel_site, debug=True)
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert answer.json["campaigns"], "the wheel is offered"
    for secret in ("FIXED-SECRET", "POOLCODE-1", "pool_id", "weight", wheel_site["secret"]):
        assert secret not in text


def test_site_key_cannot_touch_another_sites_campaign(client, make_site, make_campaign):
    mine, theirs = make_site("Mine"), make_site("Theirs")
    campaign = make_campaign(theirs)
    forged = event("impression", "visitor-0001", campaign["id"], campaign["variants"][0]["id"])
    response = send_events(client, mine, [forged])
    assert response.status_code == 400
    assert "events.0.campaign_id" in response.json["error"]["fields"]
    assert db.session.scalar(select(func.count()).select_from(Event)) == 0
    assert decide(client, mine, debug=True).json == {
        "visitor_id": "visitor-0001",
        "campaigns": [],
        "skipped": [],
    }


# --- the admin token ----------------------------------------------------------------------------


def test_admin_token_is_compared_whole(client, app):
    token = create_token("ops")
    assert (
        client.get("/api/v1/admin/sites", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    for name, variant in _variations(token).items():
        response = client.get("/api/v1/admin/sites", headers={"Authorization": f"Bearer {variant}"})
        assert response.status_code == 401, name
    for header in (f"Basic {token}", token, f"Bearer{token}", f"Token {token}"):
        assert (
            client.get("/api/v1/admin/sites", headers={"Authorization": header}).status_code == 401
        )


def test_revoked_admin_token_is_refused(client, app):
    token = create_token("ops")
    db.session.execute(update(AdminToken).values(revoked_at=func.now()))
    db.session.commit()
    response = client.get("/api/v1/admin/sites", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_admin_login_session_does_not_open_the_admin_api(client, app):
    # The admin API takes no CSRF token, so it must not take the page's session cookie either:
    # otherwise any page the admin visits could drive it.
    create_admin("owner", PASSWORD)
    assert log_in(client).status_code == 302
    assert client.get("/admin/sites").status_code == 200
    assert client.get("/api/v1/admin/sites").status_code == 401


# --- the admin password and session -------------------------------------------------------------


@pytest.mark.parametrize("name", list(_variations(PASSWORD)))
def test_admin_password_is_compared_whole(client, app, name):
    create_admin("owner", PASSWORD)
    response = log_in(client, password=_variations(PASSWORD)[name])
    assert response.status_code == 401
    assert client.get("/admin/sites").status_code == 302  # still logged out


def test_tampered_session_cookie_is_not_a_login(client, app):
    create_admin("owner", PASSWORD)
    assert log_in(client).status_code == 302
    cookie = client.get_cookie("session")
    forged = cookie.value[:-2] + ("AA" if not cookie.value.endswith("AA") else "BB")
    client.set_cookie("session", forged)
    assert client.get("/admin/sites").status_code == 302


# --- the site secret ----------------------------------------------------------------------------


def test_order_signature_is_compared_whole(client, make_site):
    site = make_site()
    body = json.dumps(ORDER).encode()
    valid = signature(site["secret"], body)
    for name, variant in _variations(valid).items():
        if variant.strip() == valid:
            continue  # surrounding blanks are trimmed: same signature
        response = post_order(client, site, None, raw=body, header=variant or False)
        assert response.status_code == 401, name
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0
    assert post_order(client, site, None, raw=body, header=valid).status_code == 201


def test_order_signed_with_the_site_key_or_an_admin_token_is_refused(client, make_site):
    site = make_site()
    body = json.dumps(ORDER).encode()
    for key in (site["site_key"], create_token("ops")):
        assert (
            post_order(client, site, None, raw=body, header=signature(key, body)).status_code == 401
        )


def test_order_signature_is_checked_in_constant_time(client, make_site, monkeypatch):
    # Behaviour, not inspection: the presented signature reaches hmac.compare_digest whole.
    compared = []
    compare_digest = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(signatures.hmac, "compare_digest", spy)
    site = make_site()
    body = json.dumps(ORDER).encode()
    forged = "sha256=" + hashlib.sha256(body).hexdigest()  # a digest, but not keyed
    assert post_order(client, site, None, raw=body, header=forged).status_code == 401
    assert compared and forged.encode() in compared[-1]
