"""A site's webhooks: where its events go, the signing secret (rotate), the delivery log
(redeliver)."""

import json

from flask import abort, flash, redirect, render_template, request, url_for

from ..errors import APIError, ValidationFailed
from ..schemas.common import load_or_raise
from ..schemas.webhooks import DeliveryQuerySchema
from ..services.platform import webhooks as webhooks_service
from ..vocabulary import DECISION_MADE, DELIVERY_STATUSES, STAGE_CHANGED
from .blueprint import bp
from .campaigns import _site_or_404


def _query() -> tuple[dict, list[str]]:
    """The log's page and filter from the query string; a bad value is dropped and named."""
    args = {k: v for k, v in request.args.items() if k in ("before", "status") and v}
    try:
        return load_or_raise(DeliveryQuerySchema(), args), []
    except ValidationFailed as err:
        kept = {k: v for k, v in args.items() if k not in err.fields}
        return load_or_raise(DeliveryQuerySchema(), kept), sorted(err.fields)


def _receivers(site) -> list[dict]:
    """Where the site's events go, as its settings and its campaigns say."""
    settings = site.settings or {}
    found = []
    if (settings.get("webhook") or {}).get("url"):
        hook = settings["webhook"]
        found.append({"what": "Site webhook", "url": hook["url"], "events": hook["events"]})
    if settings.get("stage_webhook_url"):
        url = settings["stage_webhook_url"]
        found.append({"what": "Stage webhook", "url": url, "events": [STAGE_CHANGED]})
    if (settings.get("response_webhook") or {}).get("url"):
        hook = settings["response_webhook"]
        what = "Response webhook" + (" (Slack)" if hook.get("format") == "slack" else "")
        found.append({"what": what, "url": hook["url"], "events": hook["events"]})
    for campaign in site.campaigns:
        url = (campaign.ab or {}).get("webhook_url")
        if url:
            what = f"Campaign “{campaign.name}”"
            found.append({"what": what, "url": url, "events": [DECISION_MADE]})
    return found


@bp.get("/sites/<int:site_id>/webhooks")
def webhooks(site_id):
    """The site's receivers, signing secret and deliveries (newest first, 50 a page)."""
    site = _site_or_404(site_id)
    query, problems = _query()
    deliveries = webhooks_service.deliveries_of(
        site.id, query.get("before"), webhooks_service.LOG_LIMIT, query.get("status")
    )
    older = deliveries[-1].id if len(deliveries) == webhooks_service.LOG_LIMIT else None
    return render_template(
        "admin/webhooks.html",
        site=site,
        receivers=_receivers(site),
        previous_valid_until=webhooks_service.previous_secret_valid_until(site),
        deliveries=deliveries,
        bodies={d.id: json.dumps(d.payload, indent=2, ensure_ascii=False) for d in deliveries},
        statuses=DELIVERY_STATUSES,
        status=query.get("status"),
        before=query.get("before"),
        older=older,
        max_attempts=webhooks_service.MAX_ATTEMPTS,
        problems=problems,
    )


@bp.post("/webhook-deliveries/<int:delivery_id>/redeliver")
def webhook_redeliver(delivery_id):
    """Send a delivery's message again now (same webhook-id and body), back to the log."""
    try:
        delivery = webhooks_service.get_delivery(delivery_id)
    except APIError:
        abort(404)
    again = webhooks_service.redeliver(delivery)
    if again.id == delivery.id:
        flash(f"Delivery {delivery.id} ({delivery.message_id}) is due now.", "success")
    else:
        flash(
            f"Delivery {delivery.id} ({delivery.message_id}) queued again as delivery "
            f"{again.id}: the worker sends it within seconds.",
            "success",
        )
    return redirect(url_for("admin.webhooks", site_id=delivery.site_id))


@bp.post("/sites/<int:site_id>/webhook-secret/rotate")
def webhook_secret_rotate(site_id):
    """Give the site a new signing secret; the previous one signs too for 24 hours."""
    site = webhooks_service.rotate_secret(_site_or_404(site_id))
    until = webhooks_service.previous_secret_valid_until(site)
    flash(
        "New signing secret. Deliveries carry a signature with the previous one too until "
        f"{until:%Y-%m-%d %H:%M} UTC: switch your receivers before then.",
        "success",
    )
    return redirect(url_for("admin.webhooks", site_id=site.id))
