"""POST spin: the server picks the slice and the code, once per visitor, never a code twice."""

import pytest
from sqlalchemy import func, select

from tests.api.helpers import decide, event, post_public, send_events
from tests.rewards.conftest import pool_slice, slice_
from tests.rewards.helpers import decided_spin, spin
from widget_server.extensions import db
from widget_server.models import CouponCode, MetricConversion, Spin, Visitor


@pytest.fixture
def wheel_site(make_site, make_pool, make_wheel):
    """A site with a 3-code pool and a wheel whose only weighted slice is the pool's."""
    site = make_site()
    pool = make_pool(site, codes=["CODE-A", "CODE-B", "CODE-C"])
    wheel = make_wheel(site, [pool_slice("10% off", 1, pool["id"]), slice_("No luck", 0)])
    return site, pool, wheel


def test_spin_hands_out_a_code_from_the_slice_pool(client, wheel_site):
    site, pool, wheel = wheel_site
    response = decided_spin(client, site, wheel["id"])
    assert response.status_code == 200, response.json
    assert response.json["slice_index"] == 0
    assert response.json["label"] == "10% off"
    assert response.json["code"] in {"CODE-A", "CODE-B", "CODE-C"}
    assert response.json["repeated"] is False
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    coupon = db.session.scalar(select(CouponCode).where(CouponCode.code == response.json["code"]))
    assert coupon.status == "assigned"
    assert coupon.campaign_id == wheel["id"]
    assert coupon.variant_id == wheel["variants"][0]["id"]
    assert coupon.visitor_id == db.session.scalar(
        select(Visitor.id).where(Visitor.visitor_key == "visitor-0001")
    )


def test_repeated_spin_returns_first_result(client, wheel_site):
    site, _, wheel = wheel_site
    first = decided_spin(client, site, wheel["id"]).json
    again = spin(client, site, wheel["id"])
    assert again.status_code == 200
    assert {k: again.json[k] for k in ("slice_index", "label", "code")} == {
        k: first[k] for k in ("slice_index", "label", "code")
    }
    assert again.json["repeated"] is True
    assert db.session.scalar(select(func.count()).select_from(Spin)) == 1
    assigned = select(func.count()).where(CouponCode.status == "assigned")
    assert db.session.scalar(assigned) == 1


def test_empty_pool_falls_back_to_no_prize_slice_and_never_reuses_a_code(client, wheel_site):
    site, _, wheel = wheel_site
    codes = [decided_spin(client, site, wheel["id"], f"visitor-{i:04d}").json for i in range(5)]
    given = [c["code"] for c in codes if c["code"]]
    assert sorted(given) == ["CODE-A", "CODE-B", "CODE-C"]
    fallbacks = [c for c in codes if c["code"] is None]
    assert [(c["slice_index"], c["label"]) for c in fallbacks] == [(1, "No luck")] * 2


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"slice_index": 0}, "slice_index"),
        ({"code": "CODE-A"}, "code"),
        ({"variant_id": 1}, "variant_id"),
    ],
)
def test_browser_cannot_choose_the_outcome(client, wheel_site, extra, field):
    site, _, wheel = wheel_site
    response = decided_spin(client, site, wheel["id"], **extra)
    assert response.status_code == 400
    assert field in response.json["error"]["fields"]
    assert db.session.scalar(select(func.count()).select_from(Spin)) == 0


def test_visitor_never_decided_gets_409_naming_visitor_id(client, wheel_site):
    site, _, wheel = wheel_site
    response = spin(client, site, wheel["id"], "never-decided-1")
    assert response.status_code == 409
    assert "visitor_id" in response.json["error"]["fields"]


def test_holdout_visitor_cannot_spin(client, make_site, make_wheel):
    site = make_site()
    wheel = make_wheel(site, [slice_("Nothing", 1)], ab={"holdout_percent": 50})
    held_out = next(
        f"visitor-{i:04d}"
        for i in range(200)
        if not decide(client, site, f"visitor-{i:04d}").json["campaigns"]
    )
    response = spin(client, site, wheel["id"], held_out)
    assert response.status_code == 409
    assert "visitor_id" in response.json["error"]["fields"]


def test_unknown_campaign_or_a_survey_is_refused_naming_campaign_id(
    client, wheel_site, make_campaign
):
    site, _, _ = wheel_site
    survey = make_campaign(site)
    assert decide(client, site).status_code == 200
    assert spin(client, site, 999999).status_code == 404
    refused = spin(client, site, survey["id"])
    assert refused.status_code == 400
    assert "campaign_id" in refused.json["error"]["fields"]


def test_other_sites_wheel_is_not_found(client, wheel_site, make_site):
    _, _, wheel = wheel_site
    other = make_site("Other")
    response = decided_spin(client, other, wheel["id"])
    assert response.status_code == 404


def test_fixed_code_slice_gives_the_fixed_code_to_everyone(client, make_site, make_wheel):
    site = make_site()
    free = slice_("Free shipping", 1, {"type": "code", "code": "FREESHIP"})
    wheel = make_wheel(site, [free, slice_("No", 0)])
    codes = {
        decided_spin(client, site, wheel["id"], f"visitor-{i:04d}").json["code"] for i in (1, 2)
    }
    assert codes == {"FREESHIP"}


def test_zero_weight_slice_is_never_chosen(client, make_site, make_wheel):
    site = make_site()
    wheel = make_wheel(site, [slice_("Never", 0), slice_("Always", 5), slice_("Never 2", 0)])
    indexes = {
        decided_spin(client, site, wheel["id"], f"visitor-{i:04d}").json["slice_index"]
        for i in range(30)
    }
    assert indexes == {1}


EMAIL_REQUIRED = {"enabled": True, "required": True, "consent_text": "Offers by e-mail"}


def test_required_email_missing_is_400_naming_email(client, make_site, make_wheel):
    site = make_site()
    wheel = make_wheel(site, [slice_("Nothing", 1)], email_capture=EMAIL_REQUIRED)
    response = decided_spin(client, site, wheel["id"])
    assert response.status_code == 400
    assert "email" in response.json["error"]["fields"]


def test_one_reward_per_email_per_campaign(client, make_site, make_wheel):
    site = make_site()
    wheel = make_wheel(site, [slice_("Nothing", 1)], email_capture=EMAIL_REQUIRED)
    first = decided_spin(client, site, wheel["id"], "visitor-0001", email="Ann@Example.com")
    assert first.status_code == 200
    second = decided_spin(client, site, wheel["id"], "visitor-0002", email="ann@example.com ")
    assert second.status_code in (400, 409)
    assert "email" in second.json["error"]["fields"]
    # The first visitor asking again still gets their result.
    assert (
        spin(client, site, wheel["id"], "visitor-0001", email="ann@example.com").status_code == 200
    )


@pytest.mark.parametrize(
    "again", ["ANN@example.com", "ann+promo@example.com", "Ann+2@EXAMPLE.COM", '"ann"@example.com']
)
def test_one_reward_per_mailbox_whatever_its_spelling(client, make_site, make_wheel, again):
    site = make_site()
    wheel = make_wheel(site, [slice_("Nothing", 1)], email_capture=EMAIL_REQUIRED)
    first = decided_spin(client, site, wheel["id"], "visitor-0001", email="ann@example.com")
    assert first.status_code == 200
    second = decided_spin(client, site, wheel["id"], "visitor-0002", email=again)
    assert second.status_code in (400, 409), second.json
    assert "email" in second.json["error"]["fields"]
    other = decided_spin(client, site, wheel["id"], "visitor-0003", email="anna@example.com")
    assert other.status_code == 200


def test_email_kept_on_visitor_only_with_consent(client, make_site, make_wheel):
    site = make_site()
    wheel = make_wheel(site, [slice_("Nothing", 1)], email_capture=EMAIL_REQUIRED)
    decided_spin(client, site, wheel["id"], "visitor-0001", email="a@example.com")
    decided_spin(
        client, site, wheel["id"], "visitor-0002", email="b@example.com", email_consent=True
    )
    emails = dict(db.session.execute(select(Visitor.visitor_key, Visitor.email)).all())
    assert emails == {"visitor-0001": None, "visitor-0002": "b@example.com"}
    stored = set(db.session.scalars(select(Spin.email)))
    assert stored == {"a@example.com", "b@example.com"}


def test_spin_counts_once_for_the_spin_metric_of_the_variant(client, make_site, make_wheel):
    site = make_site()
    wheel = make_wheel(site, [slice_("Nothing", 1)])
    variant_id = wheel["variants"][0]["id"]
    assert decide(client, site).status_code == 200
    impression = event("impression", "visitor-0001", wheel["id"], variant_id)
    assert send_events(client, site, [impression]).status_code == 202
    spin(client, site, wheel["id"])
    spin(client, site, wheel["id"])
    rows = db.session.scalars(
        select(MetricConversion).where(MetricConversion.campaign_id == wheel["id"])
    ).all()
    assert [(r.metric, r.variant_id) for r in rows] == [("spin", variant_id)]
    from widget_server.services.promotion.metrics import campaign_figures

    figures = campaign_figures(wheel["id"], "spin")[variant_id]
    assert (figures.visitors, figures.conversions) == (1, 1)


def test_spin_rate_limited_per_visitor(app, database_url, make_site, make_wheel):
    from tests.conftest import BASE_TEST_CONFIG
    from widget_server import create_app

    site = make_site()
    wheel = make_wheel(site, [slice_("Nothing", 1)])
    limited = create_app(
        {
            **BASE_TEST_CONFIG,
            "DATABASE_URL": database_url,
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_SPIN": "2 per minute",
        }
    )
    client = limited.test_client()

    def ask(visitor_id, ip):
        return client.post(
            f"/api/v1/sites/{site['site_key']}/spin",
            data=f'{{"visitor_id": "{visitor_id}", "campaign_id": {wheel["id"]}}}',
            content_type="text/plain",
            headers={"Origin": "https://shop.example"},
            environ_base={"REMOTE_ADDR": ip},
        )

    # The same visitor from changing addresses: limited by visitor id.
    statuses = [ask("visitor-0001", f"203.0.113.{i}").status_code for i in range(3)]
    assert statuses[2] == 429
    # Many visitor ids from one address: limited by the address.
    statuses = [ask(f"visitor-{i:04d}x", "198.51.100.7").status_code for i in range(3)]
    assert statuses[2] == 429
    assert ask("visitor-9999", "192.0.2.1").status_code != 429
    with limited.app_context():
        db.engine.dispose()


def identify(client, site, visitor_id, customer_id):
    body = {"visitor_id": visitor_id, "customer_id": customer_id}
    assert post_public(client, site, "identify", body).status_code == 200


def test_merged_visitors_spin_answers_the_customers_first_result(client, wheel_site):
    """A spin won on one device stays the customer's one spin after identify merges devices."""
    site, _, wheel = wheel_site
    decide(client, site, "visitor-laptop1")
    identify(client, site, "visitor-laptop1", "cust-1")  # the customer's first visitor
    won = decided_spin(client, site, wheel["id"], "visitor-phone01").json
    identify(client, site, "visitor-phone01", "cust-1")  # merged into the laptop's visitor

    for key in ("visitor-laptop1", "visitor-phone01"):
        again = spin(client, site, wheel["id"], key)
        assert again.status_code == 200, again.json
        assert (again.json["code"], again.json["repeated"]) == (won["code"], True)
    assert db.session.scalar(select(func.count()).select_from(Spin)) == 1
    assert db.session.scalar(select(func.count()).where(CouponCode.status != "available")) == 1


def test_repeated_spin_keeps_the_won_label_after_the_slices_are_edited(client, admin, wheel_site):
    site, pool, wheel = wheel_site
    first = decided_spin(client, site, wheel["id"]).json
    edited = [slice_("Nothing today", 1), pool_slice("10% off", 0, pool["id"])]
    variant_id = wheel["variants"][0]["id"]
    patched = admin.patch(
        f"/api/v1/admin/variants/{variant_id}",
        json={"content": {"title": "Spin", "slices": edited}},
    )
    assert patched.status_code == 200, patched.json
    again = spin(client, site, wheel["id"]).json
    assert (again["label"], again["code"]) == ("10% off", first["code"])
