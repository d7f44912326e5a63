"""Sites, campaigns and variants as the admin API creates and changes them.

What arrives here has been loaded by the schemas (shapes, defaults, origins normalised, variant
content loaded for its campaign's kind); what only the database knows is checked here: a wheel's
pools belong to the site, one control per campaign, a campaign can start (with something to show,
and no template's placeholder code to hand out).
"""

from sqlalchemy import select

from ...errors import Conflict, ValidationFailed
from ...extensions import db
from ...models import Campaign, CouponPool, Site, Variant
from ...models.types import utcnow
from ...vocabulary import PHASE_CAMPAIGN_FIELDS, PHASE_VARIANT_FIELDS, STATUS_TRANSITIONS
from ..platform.rows import get_or_404
from . import phases, site_config
from .templates import PLACEHOLDER_CODE, hands_out_placeholder


def list_sites() -> list[Site]:
    return list(db.session.scalars(select(Site).order_by(Site.id)))


def create_site(data: dict) -> Site:
    site = Site(
        name=data["name"],
        allowed_origins=sorted(set(data.get("allowed_origins", []))),
        settings=data.get("settings") or {},
        integrations=merged_integrations({}, data.get("integrations") or {}),
    )
    db.session.add(site)
    db.session.commit()
    return site


def update_site(site: Site, data: dict) -> Site:
    if "name" in data:
        site.name = data["name"]
    if "allowed_origins" in data:
        site.allowed_origins = sorted(set(data["allowed_origins"]))
    if "settings" in data:
        site.settings = {**(site.settings or {}), **data["settings"]}
    if "integrations" in data:
        site.integrations = merged_integrations(site.integrations or {}, data["integrations"])
    db.session.commit()
    site_config.invalidate(site.site_key)
    return site


def merged_integrations(stored: dict, changes: dict) -> dict:
    """The site's store platforms after a change: each platform given keeps the keys it does not
    name; a null secret removes the secret, a null platform the whole platform. What is off
    (``link_cart: false``) is not stored: absent means off.

    :raise ValidationFailed: naming ``integrations.<platform>.link_cart`` when carts would be
        linked for two platforms (one storefront runs on one platform; the snippet writes one).
    """
    merged = {name: dict(values) for name, values in stored.items()}
    for platform, values in changes.items():
        if values is None:
            merged.pop(platform, None)
            continue
        current = merged.setdefault(platform, {})
        for key, value in values.items():
            if value is None or value is False:
                current.pop(key, None)
            else:
                current[key] = value
    linking = sorted(name for name, values in merged.items() if values.get("link_cart"))
    if len(linking) > 1:
        raise ValidationFailed(
            "Carts can be linked for one store platform only.",
            {
                f"integrations.{name}.link_cart": [
                    f"Already on for {', '.join(other for other in linking if other != name)}."
                ]
                for name in linking
                if name in changes
            }
            or {"integrations": ["Carts can be linked for one store platform only."]},
        )
    return {name: values for name, values in merged.items() if values}


def get_site(site_id: int) -> Site:
    return get_or_404(Site, site_id, "site")


def get_campaign(campaign_id: int) -> Campaign:
    return get_or_404(Campaign, campaign_id, "campaign")


def get_variant(variant_id: int) -> Variant:
    return get_or_404(Variant, variant_id, "variant")


def check_slice_pools(site_id: int, content: dict, prefix: str) -> None:
    """Every wheel slice's pool must be a pool of the variant's site.

    :raise ValidationFailed: naming ``<prefix>.slices.<i>.reward.pool_id``.
    """
    wanted = {
        index: s["reward"]["pool_id"]
        for index, s in enumerate(content.get("slices") or [])
        if s.get("reward", {}).get("type") == "pool"
    }
    if not wanted:
        return
    known = set(
        db.session.scalars(
            select(CouponPool.id).where(
                CouponPool.site_id == site_id, CouponPool.id.in_(set(wanted.values()))
            )
        )
    )
    errors = {
        f"{prefix}.slices.{index}.reward.pool_id": [f"No coupon pool {pool_id} on this site."]
        for index, pool_id in wanted.items()
        if pool_id not in known
    }
    if errors:
        raise ValidationFailed("A slice names a coupon pool this site does not have.", errors)


def create_campaign(site: Site, data: dict) -> Campaign:
    variants = data.pop("variants", None) or []
    campaign = Campaign(site_id=site.id, **data)
    for index, variant in enumerate(variants):
        if campaign.kind == "wheel":
            check_slice_pools(site.id, variant["content"], f"variants.{index}.content")
        campaign.variants.append(Variant(**variant))
    _check_controls(campaign.variants, "variants")
    db.session.add(campaign)
    db.session.commit()
    return campaign


def update_campaign(campaign: Campaign, data: dict) -> Campaign:
    """Change a campaign; a change of its targeting or trigger while its test is in progress
    starts a new phase (``data["phase"]`` says what happens to the assignments).

    :raise Conflict: naming ``phase``, when such a change comes without the choice.
    """
    choice = data.pop("phase", None)
    changed = phases.phase_changes(campaign, data, PHASE_CAMPAIGN_FIELDS, campaign)
    phases.check_choice(campaign, changed, choice)
    for name, value in data.items():
        setattr(campaign, name, value)
    if changed:
        phases.start_phase(campaign, changed, choice["assignments"])
    db.session.commit()
    site_config.invalidate(campaign.site.site_key)
    return campaign


def add_variant(campaign: Campaign, data: dict) -> Variant:
    """Add a variant; added to a test in progress, it changes the split, so it starts a new
    phase (``data["phase"]`` says what happens to the assignments).

    :raise Conflict: the campaign is completed; or naming ``phase``, when a phase-starting
        addition comes without the choice.
    """
    if campaign.status == "completed":
        raise Conflict("A completed campaign cannot get new variants.")
    choice = data.pop("phase", None)
    changed = phases.variant_added(campaign, data["name"])
    phases.check_choice(campaign, changed, choice)
    if campaign.kind == "wheel":
        check_slice_pools(campaign.site_id, data["content"], "content")
    variant = Variant(**data)
    campaign.variants.append(variant)
    _check_controls(campaign.variants, "is_control")
    if changed:
        phases.start_phase(campaign, changed, choice["assignments"])
    db.session.commit()
    site_config.invalidate(campaign.site.site_key)
    return variant


def update_variant(variant: Variant, data: dict) -> Variant:
    """Change a variant; a change of its content or weight while its campaign's test is in
    progress starts a new phase (``data["phase"]`` says what happens to the assignments).

    :raise Conflict: naming ``phase``, when such a change comes without the choice.
    """
    campaign = variant.campaign
    choice = data.pop("phase", None)
    changed = phases.phase_changes(campaign, data, PHASE_VARIANT_FIELDS, variant)
    phases.check_choice(campaign, changed, choice)
    if "content" in data and campaign.kind == "wheel":
        check_slice_pools(campaign.site_id, data["content"], "content")
    for name, value in data.items():
        setattr(variant, name, value)
    _check_controls(campaign.variants, "is_control")
    if changed:
        described = [f"variant {variant.id} {name}" for name in changed]
        phases.start_phase(campaign, described, choice["assignments"])
    db.session.commit()
    site_config.invalidate(variant.campaign.site.site_key)
    return variant


def _check_controls(variants: list[Variant], field: str) -> None:
    if sum(1 for v in variants if v.is_control) > 1:
        raise ValidationFailed("Only one variant can be the control.", {field: ["Two controls."]})


def change_status(campaign: Campaign, action: str) -> Campaign:
    """Start, pause or complete a campaign.

    :raise Conflict: the campaign's status does not allow it, or it has nothing to show.
    """
    allowed_from, target = STATUS_TRANSITIONS[action]
    if campaign.status not in allowed_from:
        raise Conflict(f"Cannot {action} a campaign that is {campaign.status}.")
    if target == "running":
        _check_startable(campaign)
        campaign.started_at = campaign.started_at or utcnow()
    if target == "completed":
        campaign.ended_at = utcnow()
    campaign.status = target
    db.session.commit()
    site_config.invalidate(campaign.site.site_key)
    return campaign


def _check_startable(campaign: Campaign) -> None:
    if not campaign.variants:
        raise Conflict("Add a variant before starting the campaign.", {"variants": ["None."]})
    if not any(v.weight > 0 for v in campaign.variants):
        raise Conflict("At least one variant needs a weight above 0.", {"variants": ["All 0."]})
    for variant in campaign.variants:
        if campaign.kind == "wheel" and hands_out_placeholder(variant.content):
            raise Conflict(
                f"Variant “{variant.name}” still hands out the template's code {PLACEHOLDER_CODE}: "
                "choose a coupon pool or type your code before starting.",
                {"content.slices": [f"A slice's code is {PLACEHOLDER_CODE}."]},
            )
    for reward in _reward_offers(campaign):
        wheel = db.session.scalar(
            select(Campaign).where(Campaign.id == reward, Campaign.site_id == campaign.site_id)
        )
        if wheel is None or wheel.kind != "wheel":
            raise Conflict(
                f"The thank-you reward names campaign {reward}, which is not a wheel of this site.",
                {"content.thank_you.reward.campaign_id": ["Not a wheel campaign of this site."]},
            )


def _reward_offers(campaign: Campaign) -> set[int]:
    return {
        v.content["thank_you"]["reward"]["campaign_id"]
        for v in campaign.variants
        if (v.content.get("thank_you") or {}).get("reward")
    }
