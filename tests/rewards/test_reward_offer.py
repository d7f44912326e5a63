"""A survey's thank-you step offers a spin: decide carries the wheel, the spin then works."""

import json

from sqlalchemy import func, select

from tests.api.helpers import decide, event, send_events
from tests.conftest import survey_content
from tests.rewards.conftest import pool_slice, slice_
from tests.rewards.helpers import spin
from widget_server.demo.store import WHEEL_NAME, ensure_demo_site
from widget_server.extensions import db
from widget_server.models import Campaign, CouponPool


def survey_with_reward(make_campaign, site, wheel_id):
    reward = {"campaign_id": wheel_id, "label": "Spin for a discount"}
    content = survey_content(thank_you={"title": "Thanks!", "reward": reward})
    return make_campaign(site, variants=[{"name": "A", "is_control": True, "content": content}])


def test_decide_gives_the_survey_its_reward_wheel_without_secrets(
    client, make_site, make_pool, make_wheel, make_campaign
):
    site = make_site()
    pool = make_pool(site, codes=["R-1"])
    slices = [pool_slice("10% off", 1, pool["id"]), slice_("No", 0, color="#000000")]
    # The wheel on its own only shows on the cart page; as a reward it goes anywhere.
    wheel = make_wheel(site, slices, targeting={"url_include": ["/cart*"]})
    survey = survey_with_reward(make_campaign, site, wheel["id"])

    answer = decide(client, site, "visitor-0001", url="https://shop.example/products/1").json
    assert [c["campaign_id"] for c in answer["campaigns"]] == [survey["id"]]
    reward = answer["campaigns"][0]["reward"]
    assert reward["campaign_id"] == wheel["id"]
    assert reward["variant_id"] == wheel["variants"][0]["id"]
    assert reward["label"] == "Spin for a discount"
    assert reward["content"]["slices"] == [
        {"label": "10% off", "color": "#2a9d8f"},
        {"label": "No", "color": "#000000"},
    ]
    assert "pool_id" not in json.dumps(answer) and "R-1" not in json.dumps(answer)

    # Offered as the survey's reward, the wheel spins once the survey is completed.
    early = spin(client, site, wheel["id"], "visitor-0001")
    assert early.status_code == 409
    assert "visitor_id" in early.json["error"]["fields"]
    complete = event("complete", "visitor-0001", survey["id"], survey["variants"][0]["id"])
    assert send_events(client, site, [complete]).status_code == 202
    won = spin(client, site, wheel["id"], "visitor-0001")
    assert won.status_code == 200
    assert won.json["code"] == "R-1"


def test_no_reward_entry_when_the_wheel_is_not_running(
    client, make_site, make_wheel, make_campaign, admin
):
    site = make_site()
    wheel = make_wheel(site, [slice_("No", 1)])
    survey_with_reward(make_campaign, site, wheel["id"])
    admin.post(f"/api/v1/admin/campaigns/{wheel['id']}/pause")
    campaigns = decide(client, site).json["campaigns"]
    assert [c["kind"] for c in campaigns] == ["survey"]
    assert "reward" not in campaigns[0]


def test_demo_has_a_wheel_offered_by_the_survey_and_stays_idempotent(client):
    first = ensure_demo_site(["https://shop.example"])
    ensure_demo_site(["https://shop.example"])
    assert db.session.scalar(select(func.count()).select_from(Campaign)) == 2
    pools = db.session.scalars(select(CouponPool).order_by(CouponPool.id)).all()
    assert [p.name for p in pools] == ["Demo 10% off", "Demo 15% off"]
    from widget_server.services.rewards.coupons import stock

    assert [stock([p.id])[p.id].available for p in pools] == [150, 50]
    site = {"site_key": first.site_key}
    home = decide(client, site, "visitor-0001", url="https://shop.example/demo/").json
    survey = next(c for c in home["campaigns"] if c["kind"] == "survey")
    assert survey["reward"]["kind"] == "wheel"
    wheel = db.session.scalar(select(Campaign).where(Campaign.name == WHEEL_NAME))
    assert survey["reward"]["campaign_id"] == wheel.id
    cart = decide(client, site, "visitor-0002", url="https://shop.example/demo/cart").json
    on_cart = {c["kind"]: c for c in cart["campaigns"]}
    assert on_cart["wheel"]["trigger"] == {"type": "exit_intent"}
    assert on_cart["wheel"]["priority"] < on_cart["survey"]["priority"]
    done = event("complete", "visitor-0001", survey["campaign_id"], survey["variant_id"])
    assert send_events(client, site, [done]).status_code == 202
    result = spin(client, site, wheel.id, "visitor-0001")
    assert result.status_code == 200
    assert result.json["label"] in {"10% off", "No prize", "15% off", "Free shipping"}


def test_reward_campaign_id_beyond_the_id_range_is_400_naming_it(admin, make_site):
    site = make_site()
    reward = {"campaign_id": 2**31, "label": "Spin"}
    content = survey_content(thank_you={"title": "Thanks!", "reward": reward})
    response = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns",
        json={"name": "S", "kind": "survey", "variants": [{"name": "A", "content": content}]},
    )
    assert response.status_code == 400, response.json
    assert "variants.0.content.thank_you.reward.campaign_id" in response.json["error"]["fields"]
