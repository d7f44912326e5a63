"""Simulated visitors for the promotion tests: decide, then impressions and conversions."""

import random

from tests.helpers import decide, event, send_events


def visit(client, site, campaign_id, visitor_ids):
    """Ask decide for each visitor; return ``{visitor_id: variant_id}`` of the offers."""
    served = {}
    for visitor_id in visitor_ids:
        response = decide(client, site, visitor_id=visitor_id)
        assert response.status_code == 200, response.json
        for offer in response.json["campaigns"]:
            if offer["campaign_id"] == campaign_id:
                served[visitor_id] = offer["variant_id"]
    return served


def simulate(client, site, campaign_id, rates, visitors, seed, batch=100, prefix="v"):
    """Visitors see their variant and complete with the variant's true rate (by name).

    ``rates`` maps a variant id to its true completion rate. Returns ``{visitor: variant}``.
    """
    rng = random.Random(seed)
    # Ids drawn from the seed too: with the fixture's fixed campaign seed, a test's data (who gets
    # which variant, who completes) is the same on every run, so its outcome cannot flake.
    ids = [f"{prefix}-{seed}-{i:06d}-{rng.getrandbits(24):06x}" for i in range(visitors)]
    served = visit(client, site, campaign_id, ids)
    events = []
    for visitor_id, variant_id in served.items():
        events.append(event("impression", visitor_id, campaign_id, variant_id))
        if rng.random() < rates[variant_id]:
            events.append(event("complete", visitor_id, campaign_id, variant_id))
    for start in range(0, len(events), batch):
        response = send_events(client, site, events[start : start + batch])
        assert response.status_code == 202, response.json
    return served
