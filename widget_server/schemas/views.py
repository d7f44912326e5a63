"""How sites, campaigns and variants look in admin API answers."""

from ..models import Campaign, Site, Variant


def site_json(site: Site, with_secret: bool = False) -> dict:
    body = {
        "id": site.id,
        "name": site.name,
        "site_key": site.site_key,
        "allowed_origins": site.allowed_origins,
        "settings": site.settings,
        "created_at": site.created_at.isoformat(),
    }
    if with_secret:
        body["secret"] = site.secret
        body["webhook_secret"] = site.webhook_secret
    return body


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
        "variants": [variant_json(v) for v in campaign.variants],
    }
