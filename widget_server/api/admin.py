"""The admin API under ``/api/v1/admin/``: bearer-token access to one installation's data."""

from flask import Blueprint, Response, jsonify, request, stream_with_context

from ..errors import Unauthorized
from ..schemas.campaigns import (
    CampaignSchema,
    CampaignUpdateSchema,
    FromTemplateSchema,
    PromoteSchema,
    VariantCreateSchema,
    VariantUpdateSchema,
)
from ..schemas.common import load_or_raise, patch_schema
from ..schemas.content import load_content
from ..schemas.funnel import FunnelQuerySchema, StagesSchema, VisitorPathSchema
from ..schemas.responses import ResponseQuerySchema
from ..schemas.rewards import GenerateCodesSchema, ImportCodesSchema, PoolSchema
from ..schemas.sites import SiteSchema
from ..schemas.views import campaign_json, site_json, variant_json
from ..schemas.webhooks import (
    DeliveryListSchema,
    DeliveryQuerySchema,
    DeliverySchema,
    WebhookSecretSchema,
)
from ..services import funnel
from ..services.campaigns import catalog, phases, templates
from ..services.funnel.export import segment_rows
from ..services.funnel.figures import cached_funnel_figures
from ..services.ingest import responses
from ..services.platform import webhooks
from ..services.platform.tokens import token_is_valid
from ..services.promotion import evaluation, results
from ..services.rewards import coupons
from .openapi import documented

bp = Blueprint("admin_api", __name__, url_prefix="/api/v1/admin")

# One instance per body, named in the OpenAPI document by the view that loads it.
site_schema = SiteSchema()
site_patch_schema = SiteSchema(partial=True)
campaign_schema = CampaignSchema()
campaign_patch_schema = patch_schema(CampaignUpdateSchema)
from_template_schema = FromTemplateSchema()
variant_schema = VariantCreateSchema()
variant_patch_schema = VariantUpdateSchema(partial=True)
promote_schema = PromoteSchema()
stages_schema = StagesSchema()
funnel_query_schema = FunnelQuerySchema()
response_query_schema = ResponseQuerySchema()
pool_schema = PoolSchema()
import_codes_schema = ImportCodesSchema()
generate_codes_schema = GenerateCodesSchema()
delivery_query_schema = DeliveryQuerySchema()


@bp.before_request
def require_token():
    """Every admin call needs ``Authorization: Bearer <token>`` (``funnelcake create-token``)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token_is_valid(token.strip()):
        raise Unauthorized(
            "A valid admin token is required.",
            {"Authorization": ["Send 'Bearer <token>' (funnelcake create-token)."]},
            headers={"WWW-Authenticate": 'Bearer realm="funnelcake"'},
        )


def _body() -> dict:
    return request.get_json(silent=True)


@bp.get("/sites")
def list_sites():
    """List every site."""
    return jsonify(sites=[site_json(s) for s in catalog.list_sites()])


@bp.post("/sites")
@documented(body=site_schema, status=201)
def create_site():
    """Create a site; the answer is the only one that shows its secret besides GET one site."""
    data = load_or_raise(site_schema, _body())
    return jsonify(site_json(catalog.create_site(data), with_secret=True)), 201


@bp.get("/sites/<int:site_id>")
def get_site(site_id):
    """Show one site with its secrets: ``secret`` (orders, identify) and ``webhook_secret``."""
    return jsonify(site_json(catalog.get_site(site_id), with_secret=True))


@bp.post("/sites/<int:site_id>/webhook-secret/rotate")
@documented(answer=WebhookSecretSchema)
def rotate_webhook_secret(site_id):
    """Give the site a new webhook signing secret; the previous one still signs for 24 hours.

    Until ``previous_secret_valid_until`` every delivery carries two ``v1,`` signatures in
    ``webhook-signature``, one per secret, so receivers can switch to the new one without a
    delivery failing.
    """
    site = webhooks.rotate_secret(catalog.get_site(site_id))
    until = webhooks.previous_secret_valid_until(site)
    return jsonify(
        webhook_secret=site.webhook_secret,
        previous_secret_valid_until=webhooks.iso_timestamp(until) if until else None,
    )


@bp.get("/sites/<int:site_id>/webhook-deliveries")
@documented(query=delivery_query_schema, answer=DeliveryListSchema)
def list_webhook_deliveries(site_id):
    """The site's webhook deliveries, newest first, with their bodies and delivery state.

    ``?limit=`` (1 to 200, default 50) per page; ``?before=<next_before>`` reads the next
    (older) page; ``?status=`` keeps ``pending``, ``delivered`` or ``failed`` ones.

    :raise 400: a query parameter is malformed (the error names it).
    """
    site = catalog.get_site(site_id)
    query = load_or_raise(delivery_query_schema, request.args.to_dict())
    found = webhooks.deliveries_of(
        site.id, query.get("before"), query["limit"], query.get("status")
    )
    next_before = found[-1].id if len(found) == query["limit"] else None
    return jsonify(deliveries=[webhooks.delivery_json(d) for d in found], next_before=next_before)


@bp.post("/webhook-deliveries/<int:delivery_id>/redeliver")
@documented(answer=DeliverySchema, status=202)
def redeliver_webhook(delivery_id):
    """Send a delivery's message again now, with the same ``webhook-id`` and body.

    A pending delivery is made due now; a delivered or failed one is kept as its record says
    and a copy is queued (the answer is the delivery that will be sent).

    :raise 404: no delivery of this id.
    """
    delivery = webhooks.redeliver(webhooks.get_delivery(delivery_id))
    return jsonify(webhooks.delivery_json(delivery)), 202


@bp.patch("/sites/<int:site_id>")
@documented(body=site_patch_schema)
def update_site(site_id):
    """Change a site's name, origins or settings."""
    site = catalog.get_site(site_id)
    data = load_or_raise(site_patch_schema, _body())
    return jsonify(site_json(catalog.update_site(site, data)))


@bp.get("/sites/<int:site_id>/campaigns")
def list_campaigns(site_id):
    """List a site's campaigns with their variants."""
    site = catalog.get_site(site_id)
    return jsonify(campaigns=[campaign_json(c) for c in site.campaigns])


@bp.post("/sites/<int:site_id>/campaigns")
@documented(body=campaign_schema, status=201)
def create_campaign(site_id):
    """Create a campaign (draft), optionally with its variants."""
    site = catalog.get_site(site_id)
    data = load_or_raise(campaign_schema, _body())
    return jsonify(campaign_json(catalog.create_campaign(site, data))), 201


@bp.get("/campaign-templates")
def list_campaign_templates():
    """List the campaign templates, each with the draft it creates (a campaign body)."""
    return jsonify(templates=[t.as_json() for t in templates.TEMPLATES])


@bp.post("/sites/<int:site_id>/campaigns/from-template")
@documented(body=from_template_schema, status=201)
def create_campaign_from_template(site_id):
    """Create a draft campaign from a template, validated like any campaign body.

    :raise 400: no such template (``fields.template``), or a pool for a template without a
        prize (``fields.pool_id``) or from another site.
    """
    site = catalog.get_site(site_id)
    choice = load_or_raise(from_template_schema, _body())
    draft = templates.draft(choice["template"], choice.get("name"), choice.get("pool_id"))
    data = load_or_raise(campaign_schema, draft)
    return jsonify(campaign_json(catalog.create_campaign(site, data))), 201


@bp.get("/campaigns/<int:campaign_id>")
def get_campaign(campaign_id):
    """Show one campaign."""
    return jsonify(campaign_json(catalog.get_campaign(campaign_id)))


@bp.patch("/campaigns/<int:campaign_id>")
@documented(body=campaign_patch_schema)
def update_campaign(campaign_id):
    """Change a campaign's rules or settings (not its kind).

    :raise 409: naming ``phase``: a change of a test in progress that starts a new phase needs
        ``phase.assignments``.
    """
    campaign = catalog.get_campaign(campaign_id)
    data = load_or_raise(campaign_patch_schema, _body())
    return jsonify(campaign_json(catalog.update_campaign(campaign, data)))


@bp.post("/campaigns/<int:campaign_id>/<any(start, pause, complete):action>")
def change_campaign_status(campaign_id, action):
    """Start, pause or complete a campaign.

    :raise 409: the current status does not allow it.
    """
    campaign = catalog.get_campaign(campaign_id)
    return jsonify(campaign_json(catalog.change_status(campaign, action)))


@bp.get("/campaigns/<int:campaign_id>/results")
def campaign_results(campaign_id):
    """Per-variant figures with their uncertainty, the SRM check and the current decision, of
    the current phase or of ``?phase=N``.

    :raise 400: naming ``phase``: not one of the campaign's phases.
    """
    campaign = catalog.get_campaign(campaign_id)
    phase = phases.chosen_phase(campaign, request.args.get("phase"))
    return jsonify(results.campaign_results(campaign, with_series=True, phase=phase))


@bp.post("/campaigns/<int:campaign_id>/promote")
@documented(body=promote_schema, status=201)
def promote_variant(campaign_id):
    """Promote a variant by hand: it takes all non-holdout traffic from the next decide on.

    :raise 409: the campaign is not running or paused, or a variant is already promoted.
    """
    campaign = catalog.get_campaign(campaign_id)
    data = load_or_raise(promote_schema, _body())
    decision = evaluation.promote_by_hand(campaign, data["variant_id"])
    return jsonify(evaluation.decision_json(decision)), 201


@bp.post("/campaigns/<int:campaign_id>/undo")
@documented(status=201)
def undo_decision(campaign_id):
    """Undo the latest promotion or stop: the previous weights come back.

    :raise 409: there is nothing to undo.
    """
    campaign = catalog.get_campaign(campaign_id)
    return jsonify(evaluation.decision_json(evaluation.undo(campaign))), 201


@bp.get("/campaigns/<int:campaign_id>/decisions")
def list_decisions(campaign_id):
    """The campaign's decision log, newest first."""
    campaign = catalog.get_campaign(campaign_id)
    decisions = evaluation.decisions_of(campaign)
    return jsonify(decisions=[evaluation.decision_json(d) for d in decisions])


@bp.post("/campaigns/<int:campaign_id>/variants")
@documented(body=variant_schema, status=201)
def add_variant(campaign_id):
    """Add a variant to a campaign.

    :raise 409: naming ``phase``: a variant added to a test in progress starts a new phase and
        needs ``phase.assignments``.
    """
    campaign = catalog.get_campaign(campaign_id)
    data = load_or_raise(variant_schema, _body())
    data["content"] = load_content(campaign.kind, data["content"])
    return jsonify(variant_json(catalog.add_variant(campaign, data))), 201


@bp.get("/variants/<int:variant_id>")
def get_variant(variant_id):
    """Show one variant."""
    return jsonify(variant_json(catalog.get_variant(variant_id)))


@bp.patch("/variants/<int:variant_id>")
@documented(body=variant_patch_schema)
def update_variant(variant_id):
    """Change a variant's name, weight or content.

    :raise 409: naming ``phase``: a change of a test in progress that starts a new phase needs
        ``phase.assignments``.
    """
    variant = catalog.get_variant(variant_id)
    data = load_or_raise(variant_patch_schema, _body())
    if "content" in data:
        data["content"] = load_content(variant.campaign.kind, data["content"])
    return jsonify(variant_json(catalog.update_variant(variant, data)))


def _stages_json(stages) -> dict:
    return {"stages": [{"key": s.key, "name": s.name, "rule": s.rule} for s in stages]}


@bp.get("/sites/<int:site_id>/funnel/stages")
def get_funnel_stages(site_id):
    """Show the site's ordered funnel stages with their entry rules (the default if unset)."""
    site = catalog.get_site(site_id)
    return jsonify(_stages_json(funnel.site_stages(site.id)))


@bp.put("/sites/<int:site_id>/funnel/stages")
@documented(body=stages_schema)
def put_funnel_stages(site_id):
    """Replace the site's funnel; every staged visitor is restaged (cause ``rules``).

    :raise 400: a stage or rule is invalid; ``fields`` names it, e.g. ``stages.2.rule.all.0.gte``.
    """
    site = catalog.get_site(site_id)
    data = load_or_raise(stages_schema, _body())
    return jsonify(_stages_json(funnel.replace_stages(site, data["stages"])))


@bp.get("/sites/<int:site_id>/funnel")
@documented(query=funnel_query_schema)
def get_funnel(site_id):
    """Visitors per stage, weekly stage conversion, repeat-customer figures, CSAT and NPS.

    ``?campaign_id=`` adds the figures per variant of that campaign; ``?weeks=`` (default 12)
    bounds the weekly conversion table. Answered from this worker's snapshot, at most
    ``FUNNEL_FIGURES_TTL_S`` old plus one recomputation (``computed_at``).
    """
    site = catalog.get_site(site_id)
    query = load_or_raise(funnel_query_schema, request.args.to_dict())
    return jsonify(cached_funnel_figures(site.id, query.get("campaign_id"), query["weeks"]))


@bp.get("/sites/<int:site_id>/visitors/<visitor_key>/funnel")
def get_visitor_funnel(site_id, visitor_key):
    """Show one visitor's stage, scores, orders, attributes and complete stage history.

    :raise 400: the visitor id is not one the snippet makes (``fields.visitor_id``).
    :raise 404: no such site, or no visitor with this id on it (``fields.visitor_id``).
    """
    site = catalog.get_site(site_id)
    query = load_or_raise(VisitorPathSchema(), {"visitor_id": visitor_key})
    return jsonify(funnel.visitor_funnel(site.id, query["visitor_id"]))


@bp.get("/sites/<int:site_id>/segments.csv")
@documented(answer_type="text/csv")
def export_segments(site_id):
    """Stream one CSV row per visitor: stage, scores, orders, total spent, attributes."""
    site = catalog.get_site(site_id)
    return Response(
        stream_with_context(segment_rows(site.id)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="segments-site-{site.id}.csv"'},
    )


@bp.get("/sites/<int:site_id>/responses.csv")
# ``page`` is read (the admin page's table shares the filters) but the CSV has every row.
@documented(query=ResponseQuerySchema(exclude=("page",)), answer_type="text/csv")
def export_responses(site_id):
    """Stream the site's survey responses as CSV, one column per question with ``campaign_id``.

    Filters as on the admin page: ``campaign_id``, ``variant_id``, ``stage``, ``date_from``,
    ``date_to`` (ISO dates), ``completed`` (``yes``/``no``). Cells a spreadsheet would run as
    formulas are neutralised.

    :raise 400: a filter is malformed (the error names it).
    """
    site = catalog.get_site(site_id)
    query = load_or_raise(response_query_schema, request.args.to_dict())
    flt = responses.ResponseFilter.from_query(site.id, query)
    return Response(
        stream_with_context(responses.csv_rows(flt)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="responses-site-{site.id}.csv"'},
    )


def _pool_json(pool, stock) -> dict:
    return {
        "id": pool.id,
        "site_id": pool.site_id,
        "name": pool.name,
        "created_at": pool.created_at.isoformat(),
        "stock": stock.as_json(),
    }


@bp.get("/sites/<int:site_id>/coupon-pools")
def list_coupon_pools(site_id):
    """List a site's coupon pools with their stock (available, assigned, redeemed)."""
    site = catalog.get_site(site_id)
    pools = coupons.pools_of_site(site.id)
    stock = coupons.stock([p.id for p in pools])
    return jsonify(pools=[_pool_json(p, stock[p.id]) for p in pools])


@bp.post("/sites/<int:site_id>/coupon-pools")
@documented(body=pool_schema, status=201)
def create_coupon_pool(site_id):
    """Create an empty coupon pool; fill it with import or generate.

    :raise 409: the site already has a pool of this name.
    """
    site = catalog.get_site(site_id)
    data = load_or_raise(pool_schema, _body())
    pool = coupons.create_pool(site, data["name"])
    return jsonify(_pool_json(pool, coupons.Stock())), 201


@bp.get("/coupon-pools/<int:pool_id>")
def get_coupon_pool(pool_id):
    """Show one pool with its stock."""
    pool = coupons.get_pool(pool_id)
    return jsonify(_pool_json(pool, coupons.stock([pool.id])[pool.id]))


@bp.post("/coupon-pools/<int:pool_id>/import")
@documented(body=import_codes_schema, text_bodies=("text/csv",), status=201)
def import_coupon_codes(pool_id):
    """Import codes from a ``text/csv`` body (a ``code`` column, or the first) or JSON
    ``{"codes": [...]}``; duplicates and invalid rows are reported, not imported."""
    pool = coupons.get_pool(pool_id)
    if request.mimetype == "text/csv":
        codes = coupons.codes_from_csv(request.get_data(as_text=True))
    else:
        data = load_or_raise(import_codes_schema, _body())
        codes = list(enumerate(data["codes"], start=1))
    result = coupons.import_codes(pool, codes)
    body = {
        "imported": result.imported,
        "duplicates": result.duplicates,
        "invalid": result.invalid,
        "pool": _pool_json(pool, coupons.stock([pool.id])[pool.id]),
    }
    return jsonify(body), 201


@bp.post("/coupon-pools/<int:pool_id>/generate")
@documented(body=generate_codes_schema, status=201)
def generate_coupon_codes(pool_id):
    """Add ``count`` random single-use codes (``prefix`` + at least 60 random bits)."""
    pool = coupons.get_pool(pool_id)
    data = load_or_raise(generate_codes_schema, _body())
    generated = coupons.generate_codes(pool, data["count"], data["prefix"], data["symbols"])
    body = {"generated": generated, "pool": _pool_json(pool, coupons.stock([pool.id])[pool.id])}
    return jsonify(body), 201
