"""Calling the public API the way the snippet does: text/plain JSON bodies, an Origin header."""

import json
import uuid

ORIGIN = "https://shop.example"


def post_public(client, site, endpoint, body, origin=ORIGIN, raw=None):
    headers = {"Origin": origin} if origin else {}
    return client.post(
        f"/api/v1/sites/{site['site_key']}/{endpoint}",
        data=raw if raw is not None else json.dumps(body),
        content_type="text/plain;charset=UTF-8",
        headers=headers,
    )


def decide(client, site, visitor_id="visitor-0001", url="https://shop.example/", **extra):
    return post_public(client, site, "decide", {"visitor_id": visitor_id, "url": url, **extra})


def event(kind, visitor_id, campaign_id=None, variant_id=None, **data):
    return {
        "id": str(uuid.uuid4()),
        "type": kind,
        "visitor_id": visitor_id,
        "campaign_id": campaign_id,
        "variant_id": variant_id,
        "data": data,
    }


def send_events(client, site, events, **kwargs):
    return post_public(client, site, "events", {"events": events}, **kwargs)
