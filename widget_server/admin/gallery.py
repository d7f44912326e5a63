"""The template gallery: ready-made campaigns, each previewed by the real snippet, created as a
draft with one click."""

from flask import abort, flash, redirect, render_template, request, url_for

from ..errors import APIError, ValidationFailed
from ..schemas.campaigns import CampaignSchema, FromTemplateSchema
from ..schemas.common import load_or_raise
from ..services.campaigns import catalog, templates
from . import forms
from .blueprint import bp
from .campaigns import _pool_choices, _site_or_404


def _gallery(site, problems: list[str] | None = None, status: int = 200):
    cards = [{"template": t, "draft": templates.draft(t.id)} for t in templates.TEMPLATES]
    return render_template(
        "admin/templates.html",
        site=site,
        cards=cards,
        pool_choices=_pool_choices(site.id),
        problems=problems or [],
    ), status


@bp.get("/sites/<int:site_id>/campaigns/templates")
def template_gallery(site_id):
    """Every campaign template with a live preview and a button that creates its draft."""
    return _gallery(_site_or_404(site_id))


@bp.post("/sites/<int:site_id>/campaigns/from-template")
def campaign_from_template(site_id):
    """Create the chosen template's draft and open its campaign page."""
    site = _site_or_404(site_id)
    try:
        choice = load_or_raise(FromTemplateSchema(), forms.template_choice(request.form))
        draft = templates.draft(choice["template"], pool_id=choice.get("pool_id"))
        campaign = catalog.create_campaign(site, load_or_raise(CampaignSchema(), draft))
    except ValidationFailed as err:
        problems = [f"{k}: {'; '.join(v)}" for k, v in err.fields.items()] or [err.message]
        return _gallery(site, problems, 400)
    placeholder = any(templates.hands_out_placeholder(v.content) for v in campaign.variants)
    if placeholder:
        flash(
            f"Draft created. Its prize slice hands out the code {templates.PLACEHOLDER_CODE}: "
            "edit the variant (choose a coupon pool or type your code) before starting.",
            "info",
        )
    else:
        flash(
            "Draft created from the template: check its settings and variants, then Start.",
            "success",
        )
    return redirect(url_for("admin.campaign_edit", campaign_id=campaign.id))


@bp.get("/sites/<int:site_id>/campaigns/templates/<template_id>/preview/<int:index>")
def template_preview_frame(site_id, template_id, index):
    """A template's variant ``index`` as the visitor sees it (framed by the gallery).

    :raise 404: no such site, template or variant.
    """
    site = _site_or_404(site_id)
    try:
        draft = load_or_raise(CampaignSchema(), templates.draft(template_id))
    except APIError:
        abort(404)
    if index >= len(draft["variants"]):
        abort(404)
    content = draft["variants"][index]["content"]
    preview = {"campaign_id": 0, "kind": draft["kind"], "content": content}
    return render_template(
        "admin/preview_frame.html",
        title=draft["name"],
        site_key=site.site_key,
        preview=preview,
        problems=[],
    )
