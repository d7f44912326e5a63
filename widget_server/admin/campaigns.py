"""Sites, campaigns and variants: lists, the editor with its live preview, start/pause/complete."""

import json

from flask import abort, flash, redirect, render_template, request, url_for

from ..errors import APIError, Conflict, ValidationFailed
from ..schemas.campaigns import (
    CampaignSchema,
    CampaignUpdateSchema,
    VariantCreateSchema,
    VariantUpdateSchema,
)
from ..schemas.common import load_or_raise
from ..schemas.content import load_content
from ..schemas.sites import SiteSchema
from ..services.campaigns import catalog
from ..services.funnel import site_stages
from ..services.promotion import results
from ..vocabulary import actions_from
from . import forms
from .blueprint import bp

# -- sites ------------------------------------------------------------------------------------


@bp.route("/sites", methods=["GET", "POST"])
def site_list():
    """List the sites; add one (name and the storefront origins allowed to call the API)."""
    state = {"name": "", "allowed_origins": ""}
    errors = forms.FieldErrors()
    status = 200
    if request.method == "POST":
        state = {k: request.form.get(k, "") for k in state}
        origins = [o.strip() for o in state["allowed_origins"].splitlines() if o.strip()]
        try:
            data = load_or_raise(SiteSchema(), {"name": state["name"], "allowed_origins": origins})
            site = catalog.create_site(data)
        except ValidationFailed as err:
            errors, status = forms.FieldErrors(err.fields), 400
        else:
            flash(f"Site “{site.name}” created.", "success")
            return redirect(url_for("admin.campaign_list", site_id=site.id))
    return render_template(
        "admin/sites.html", sites=catalog.list_sites(), state=state, errors=errors
    ), status


def _site_or_404(site_id: int):
    try:
        return catalog.get_site(site_id)
    except APIError:
        abort(404)


def _campaign_or_404(campaign_id: int):
    try:
        return catalog.get_campaign(campaign_id)
    except APIError:
        abort(404)


def _variant_or_404(variant_id: int):
    try:
        return catalog.get_variant(variant_id)
    except APIError:
        abort(404)


# -- campaigns --------------------------------------------------------------------------------


@bp.get("/sites/<int:site_id>/campaigns")
def campaign_list(site_id):
    """A site's campaigns with status, variants, visitors and the headline result."""
    site = _site_or_404(site_id)
    rows = []
    for campaign in reversed(site.campaigns):
        figures = results.campaign_results(campaign)
        rows.append({"campaign": campaign, "results": figures})
    return render_template("admin/campaigns.html", site=site, rows=rows)


def _stage_choices(site_id: int) -> list[tuple[str, str]]:
    return [(s.key, s.name) for s in site_stages(site_id)]


@bp.route("/sites/<int:site_id>/campaigns/new", methods=["GET", "POST"])
def campaign_new(site_id):
    """Create a campaign (a draft); its first variant comes next."""
    site = _site_or_404(site_id)
    state = forms.campaign_to_state(None, request.args.get("kind", "survey"))
    errors = forms.FieldErrors()
    status = 200
    if request.method == "POST":
        state = forms.read_form(request.form)
        try:
            data = load_or_raise(CampaignSchema(), forms.state_to_campaign(state, with_kind=True))
            campaign = catalog.create_campaign(site, data)
        except ValidationFailed as err:
            errors, status = forms.FieldErrors(err.fields), 400
        else:
            flash("Campaign created. Now add its first variant.", "success")
            return redirect(url_for("admin.variant_new", campaign_id=campaign.id))
    return render_template(
        "admin/campaign_form.html",
        site=site,
        campaign=None,
        state=state,
        errors=errors,
        stages=_stage_choices(site.id),
    ), status


@bp.route("/campaigns/<int:campaign_id>", methods=["GET", "POST"])
def campaign_edit(campaign_id):
    """A campaign's page: its settings form, its variants with previews, and its status."""
    campaign = _campaign_or_404(campaign_id)
    state = forms.campaign_to_state(campaign)
    errors = forms.FieldErrors()
    status = 200
    if request.method == "POST":
        state = forms.read_form(request.form)
        state["kind"] = campaign.kind
        payload = forms.with_phase_choice(
            forms.state_to_campaign(state, False, campaign.targeting), state
        )
        try:
            data = load_or_raise(CampaignUpdateSchema(), payload)
            catalog.update_campaign(campaign, data)
        except (ValidationFailed, Conflict) as err:
            errors, status = forms.FieldErrors(err.fields or {"_schema": [err.message]}), 400
        else:
            flash("Settings saved.", "success")
            return redirect(url_for("admin.campaign_edit", campaign_id=campaign.id))
    return render_template(
        "admin/campaign_form.html",
        site=campaign.site,
        campaign=campaign,
        state=state,
        errors=errors,
        stages=_stage_choices(campaign.site_id),
        actions=actions_from(campaign.status),
    ), status


@bp.post("/campaigns/<int:campaign_id>/start", defaults={"action": "start"})
@bp.post("/campaigns/<int:campaign_id>/pause", defaults={"action": "pause"})
@bp.post("/campaigns/<int:campaign_id>/complete", defaults={"action": "complete"})
def campaign_status(campaign_id, action):
    """Start, pause or complete a campaign."""
    campaign = _campaign_or_404(campaign_id)
    try:
        catalog.change_status(campaign, action)
    except (Conflict, ValidationFailed) as err:
        flash(err.message, "error")
    else:
        flash(f"Campaign {campaign.status}.", "success")
    back = request.form.get("back", "")
    if not back.startswith("/admin/") or back.startswith("//"):
        back = url_for("admin.campaign_edit", campaign_id=campaign_id)
    return redirect(back)


# -- variants ---------------------------------------------------------------------------------


def _variant_form(campaign, variant, state, errors, status, json_text=None, json_error=None):
    content = (variant.content if variant is not None else None) or {}
    return render_template(
        "admin/variant_form.html",
        site=campaign.site,
        campaign=campaign,
        variant=variant,
        state=state,
        errors=errors,
        json_text=json_text
        if json_text is not None
        else json.dumps(
            content or forms.state_to_content(campaign.kind, state["content"]), indent=2
        ),
        json_error=json_error,
        localised=forms.has_locales(content),
        pool_choices=_pool_choices(campaign.site_id) if campaign.kind == "wheel" else [],
        wheel_choices=[("", "— no reward —")]
        + [(str(c.id), c.name) for c in campaign.site.campaigns if c.kind == "wheel"],
        goto_choices=_goto_choices,
    ), status


def _pool_choices(site_id: int) -> list[tuple[str, str]]:
    """The site's coupon pools with their stock, for a slice that hands out codes."""
    from ..services.rewards import coupons

    pools = coupons.pools_of_site(site_id)
    stock = coupons.stock([p.id for p in pools])
    return [("", "— choose a pool —")] + [
        (str(p.id), f"{p.name} ({stock[p.id].available:,} left)") for p in pools
    ]


def _goto_choices(step_ids, current) -> list[tuple[str, str]]:
    """Where a branching rule may lead: another step, or the end."""
    others = [(str(i), f"question “{i}”") for i in step_ids if i and i != current]
    return [("", "— no rule —"), *others, ("end", "the end (thank-you)")]


def _save_variant(campaign, variant):
    """Validate and save the posted variant form; re-render it with the errors if any."""
    state = forms.read_form(request.form)
    state.setdefault("content", {})
    action = request.form.get("action", "save")
    if forms.apply_row_action(state, action):
        return _variant_form(campaign, variant, state, forms.FieldErrors(), 200)
    if request.form.get("mode") == "json":
        content, problem = forms.content_from_json(request.form.get("content_json", ""))
        if problem:
            return _variant_form(
                campaign,
                variant,
                state,
                forms.FieldErrors(),
                400,
                request.form.get("content_json", ""),
                problem,
            )
        payload = {**forms.state_to_variant(campaign.kind, state), "content": content}
        state["content"] = forms.content_to_state(campaign.kind, content)
    else:
        payload = forms.state_to_variant(campaign.kind, state)
    payload = forms.with_phase_choice(payload, state)
    try:
        schema = VariantCreateSchema() if variant is None else VariantUpdateSchema()
        data = load_or_raise(schema, payload)
        data["content"] = load_content(campaign.kind, data["content"])
        if variant is None:
            variant = catalog.add_variant(campaign, data)
        else:
            catalog.update_variant(variant, data)
    except (ValidationFailed, Conflict) as err:
        fields = {**_content_problems(campaign, payload["content"]), **(err.fields or {})}
        if not fields:
            fields = {"_schema": [err.message]}
        return _variant_form(
            campaign,
            variant,
            state,
            forms.FieldErrors(fields),
            400,
            request.form.get("content_json") if request.form.get("mode") == "json" else None,
        )
    flash(f"Variant “{variant.name}” saved.", "success")
    return redirect(url_for("admin.variant_edit", variant_id=variant.id))


def _content_problems(campaign, content) -> dict:
    """The content's own messages, so a bad weight does not hide a blank question until later.

    The variant schema stops before the content is checked; the owner should see every problem
    of one save at once.
    """
    if not isinstance(content, dict):
        return {}
    try:
        loaded = load_content(campaign.kind, content)
        if campaign.kind == "wheel":
            catalog.check_slice_pools(campaign.site_id, loaded, "content")
    except ValidationFailed as err:
        return err.fields or {}
    return {}


@bp.route("/campaigns/<int:campaign_id>/variants/new", methods=["GET", "POST"])
def variant_new(campaign_id):
    """Add a variant: the questions of a survey, or the slices of a wheel."""
    campaign = _campaign_or_404(campaign_id)
    if request.method == "POST":
        return _save_variant(campaign, None)
    letter = chr(ord("A") + len(campaign.variants) % 26)
    state = {
        "name": f"{letter}",
        "weight": "1",
        "is_control": "true" if not campaign.variants else "false",
        "content": forms.starter_content(campaign.kind),
    }
    return _variant_form(campaign, None, state, forms.FieldErrors(), 200)


@bp.route("/variants/<int:variant_id>", methods=["GET", "POST"])
def variant_edit(variant_id):
    """Edit a variant, with a live preview of it as the visitor will see it."""
    variant = _variant_or_404(variant_id)
    if request.method == "POST":
        return _save_variant(variant.campaign, variant)
    return _variant_form(
        variant.campaign, variant, forms.variant_to_state(variant), forms.FieldErrors(), 200
    )


# -- preview ----------------------------------------------------------------------------------


def _preview(campaign, content: dict, problems: list[str] | None = None):
    """A page that loads the real snippet in preview mode with this content, and nothing else."""
    preview = {"campaign_id": campaign.id, "kind": campaign.kind, "content": content}
    return render_template(
        "admin/preview_frame.html",
        title=campaign.name,
        site_key=campaign.site.site_key,
        preview=preview,
        problems=problems or [],
    )


@bp.get("/variants/<int:variant_id>/preview")
def preview_frame(variant_id):
    """The saved variant as the visitor sees it (framed by the editor)."""
    variant = _variant_or_404(variant_id)
    return _preview(variant.campaign, variant.content)


@bp.post("/campaigns/<int:campaign_id>/preview")
def preview_frame_unsaved(campaign_id):
    """The variant form as typed, before saving, validated like a save."""
    campaign = _campaign_or_404(campaign_id)
    state = forms.read_form(request.form)
    if request.form.get("mode") == "json":
        content, problem = forms.content_from_json(request.form.get("content_json", ""))
        if problem:
            return _preview(campaign, {}, [problem])
    else:
        content = forms.state_to_content(campaign.kind, state.get("content") or {})
    try:
        content = load_content(campaign.kind, content)
    except ValidationFailed as err:
        return _preview(
            campaign, {}, [f"{forms.field_title(k)}: {'; '.join(v)}" for k, v in err.fields.items()]
        )
    return _preview(campaign, content)
