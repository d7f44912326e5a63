"""How sites, campaigns and variants look in admin API answers."""

from ..models import Campaign, Site, Variant
from ..vocabulary import STORE_PLATFORMS


def site_json(site: Site, with_secret: bool = False) -> dict:
    """A site as the admin API answers it; ``with_secret`` adds the site secret (creating a site
    and GET of one site)."""
    body = {
        "id": site.id,
        "name": site.name,
        "site_key": site.site_key,
        "allowed_origins": site.allowed_origins,
        "settings": site.settings,
        "integrations": integrations_json(site.integrations or {}),
        "created_at": site.created_at.isoformat(),
    }
    if with_secret:
        body["secret"] = site.secret
        body["webhook_secret"] = site.webhook_secret
    return body


def integrations_json(integrations: dict) -> dict:
    """Every store platform with whether its webhook secret is set, never the secret itself.

    Not even in GET of one site, which shows the site secret: Funnelcake makes the site secret,
    so the admin API is where the shop's developer reads it; a platform's secret comes from the
    platform's own admin, where it can be read again, so answering it back would only add a
    place it can leak from (logs, screenshots, a proxy's cache) and serve nobody. Write-only.
    """
    return {
        platform: {
            "webhook_secret_set": bool(integrations.get(platform, {}).get("webhook_secret")),
            "link_cart": bool(integrations.get(platform, {}).get("link_cart")),
        }
        for platform in STORE_PLATFORMS
    }


def variant_json(variant: Variant) -> dict:
    return {
        "id": variant.id,
        "campaign_id": variant.campaign_id,
        "name": variant.name,
        "is_control": variant.is_control,
        "weight": variant.weight,
        "content": variant.content,
    }


def campaign_json(campaign: Campaign) -> dict:
    return {
        "id": campaign.id,
        "site_id": campaign.site_id,
        "name": campaign.name,
        "kind": campaign.kind,
        "status": campaign.status,
        "priority": campaign.priority,
        "targeting": campaign.targeting,
        "trigger": campaign.trigger,
        "frequency": campaign.frequency,
        "ab": campaign.ab,
        "promoted_variant_id": campaign.promoted_variant_id,
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "ended_at": campaign.ended_at.isoformat() if campaign.ended_at else None,
        "phase": campaign.phase,
        "variants": [variant_json(v) for v in campaign.variants],
    }
