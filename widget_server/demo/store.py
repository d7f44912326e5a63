"""The demo store: a site with the loyalty questionnaire and a wheel, created once and reused."""

from pathlib import Path

from sqlalchemy import select

from ..extensions import db
from ..models import Campaign, Site
from ..schemas.content import load_content
from ..services.campaigns import catalog
from ..services.campaigns.templates import loyalty_questionnaire
from ..services.platform.tokens import create_token, token_is_valid
from ..services.rewards import coupons

DEMO_SITE_KEY = "pk_demo_store"
DEMO_SITE_NAME = "Demo store"
DEMO_ORIGINS = ["http://127.0.0.1:5000", "http://localhost:5000"]

#: The demo wheel's pools: (name, code prefix, number of generated codes).
DEMO_POOLS = (("Demo 10% off", "DEMO10-", 150), ("Demo 15% off", "DEMO15-", 50))
WHEEL_NAME = "Spin to win"
WHEEL_REWARD_LABEL = "Spin the wheel for a discount"


def wheel_content(pool_10: int, pool_15: int) -> dict:
    """Four slices: two discounts from pools, a fixed free-shipping code, and "no prize"."""
    return {
        "title": "Spin to win",
        "message": "One spin per visitor. Good luck!",
        "button_label": "Spin",
        "slices": [
            {
                "label": "10% off",
                "color": "#e76f51",
                "weight": 30,
                "reward": {"type": "pool", "pool_id": pool_10},
            },
            {"label": "No prize", "color": "#264653", "weight": 35, "reward": {"type": "none"}},
            {
                "label": "15% off",
                "color": "#f4a261",
                "weight": 10,
                "reward": {"type": "pool", "pool_id": pool_15},
            },
            {
                "label": "Free shipping",
                "color": "#2a9d8f",
                "weight": 25,
                "reward": {"type": "code", "code": "FREESHIP"},
            },
        ],
        "email_capture": {
            "enabled": True,
            "required": False,
            "consent_text": "Send me offers by e-mail (unsubscribe any time).",
        },
    }


def ensure_demo_wheel(site: Site) -> Campaign:
    """The demo wheel with its pools of generated codes; running on the cart page (exit intent)
    and offered as the loyalty questionnaire's reward."""
    pools = []
    for name, prefix, count in DEMO_POOLS:
        pool = coupons.find_pool(site.id, name)
        if pool is None:
            pool = coupons.create_pool(site, name)
            coupons.generate_codes(pool, count, prefix)
        pools.append(pool)
    wheel = db.session.scalar(
        select(Campaign).where(Campaign.site_id == site.id, Campaign.name == WHEEL_NAME)
    )
    if wheel is None:
        wheel = catalog.create_campaign(
            site,
            {
                "name": WHEEL_NAME,
                "kind": "wheel",
                "priority": 5,
                "targeting": {"url_include": ["/demo/cart*"]},
                "trigger": {"type": "exit_intent"},
                "frequency": {"stop_after_complete": True, "days_after_close": 1},
                "ab": {"metric": "spin", "method": "sequential"},
                "variants": [
                    {
                        "name": "A: four slices",
                        "is_control": True,
                        "weight": 1,
                        "content": load_content("wheel", wheel_content(pools[0].id, pools[1].id)),
                    }
                ],
            },
        )
        catalog.change_status(wheel, "start")
    return wheel


def _offer_reward(survey: Campaign, wheel: Campaign) -> None:
    """Make every variant's thank-you step offer a spin of ``wheel`` (kept if already there)."""
    reward = {"campaign_id": wheel.id, "label": WHEEL_REWARD_LABEL}
    for variant in survey.variants:
        thank_you = variant.content.get("thank_you") or {}
        if thank_you.get("reward") != reward:
            content = {**variant.content, "thank_you": {**thank_you, "reward": reward}}
            catalog.update_variant(variant, {"content": load_content("survey", content)})


def ensure_demo_site(origins: list[str] | None = None) -> Site:
    """The demo site, its running loyalty questionnaire and wheel; reuses what is there."""
    site = db.session.scalar(select(Site).where(Site.site_key == DEMO_SITE_KEY))
    if site is None:
        site = catalog.create_site(
            {"name": DEMO_SITE_NAME, "allowed_origins": origins or DEMO_ORIGINS}
        )
        site.site_key = DEMO_SITE_KEY
        db.session.commit()
    elif origins:
        missing = [o for o in origins if o not in site.allowed_origins]
        if missing:
            catalog.update_site(site, {"allowed_origins": site.allowed_origins + missing})
    wheel = ensure_demo_wheel(site)
    survey = db.session.scalar(
        select(Campaign).where(
            Campaign.site_id == site.id, Campaign.name == "Loyalty questionnaire"
        )
    )
    if survey is None:
        survey = catalog.create_campaign(
            site,
            {
                "name": "Loyalty questionnaire",
                "kind": "survey",
                "priority": 10,
                "targeting": {"url_exclude": ["/demo/checkout*"]},
                "trigger": {"type": "delay", "seconds": 2},
                "frequency": {"stop_after_complete": True, "days_after_close": 1},
                "ab": {"metric": "completion", "method": "sequential"},
                "variants": [
                    {
                        "name": "A: plain",
                        "is_control": True,
                        "weight": 1,
                        "content": load_content(
                            "survey", loyalty_questionnaire("Three quick questions")
                        ),
                    },
                    {
                        "name": "B: friendly",
                        "weight": 1,
                        "content": load_content(
                            "survey", loyalty_questionnaire("Help us get better (30 seconds)")
                        ),
                    },
                ],
            },
        )
        catalog.change_status(survey, "start")
    _offer_reward(survey, wheel)
    return site


def ensure_demo_token(instance_dir: Path) -> str:
    """The demo's admin token, kept in the instance folder so a second run prints the same one."""
    path = instance_dir / "demo_admin_token"
    if path.exists():
        token = path.read_text().strip()
        if token_is_valid(token):
            return token
    token = create_token("demo")
    instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(token)
    path.chmod(0o600)
    return token
