"""A site's store platforms: the webhook address to give Shopify or WooCommerce, the secret
they sign with (write-only: the page says whether one is set, takes a new one, or removes it),
and the cart link."""

from flask import flash, redirect, render_template, request, url_for

from ..errors import ValidationFailed
from ..schemas.common import load_or_raise
from ..schemas.sites import SiteSchema
from ..schemas.views import integrations_json
from ..services.campaigns import catalog
from ..vocabulary import STORE_PLATFORMS
from . import forms
from .blueprint import bp
from .campaigns import _site_or_404

#: Loads ``{"integrations": ...}`` alone, as the admin API's PATCH does.
_site_patch = SiteSchema(partial=True)


def _page(site, state: dict, errors=None, status: int = 200):
    return render_template(
        "admin/integrations.html",
        site=site,
        platforms=STORE_PLATFORMS,
        current=integrations_json(site.integrations or {}),
        state=state,
        errors=errors or forms.FieldErrors(),
    ), status


def _state(site) -> dict:
    """The form as the stored settings fill it: the checkboxes; never a secret."""
    current = integrations_json(site.integrations or {})
    return {
        "integrations": {
            platform: {"link_cart": current[platform]["link_cart"]} for platform in STORE_PLATFORMS
        }
    }


def integration_changes(posted: dict) -> dict:
    """What the posted form changes: each platform's cart link; its secret when one was typed
    (an empty box keeps the stored one), or null when *Remove the secret* was ticked."""
    changes = {}
    for platform in STORE_PLATFORMS:
        fields = (posted.get("integrations") or {}).get(platform) or {}
        change = {"link_cart": fields.get("link_cart", "false")}
        if fields.get("remove_secret") == "true":
            change["webhook_secret"] = None
        elif (fields.get("webhook_secret") or "").strip():
            change["webhook_secret"] = fields["webhook_secret"]
        changes[platform] = change
    return changes


@bp.route("/sites/<int:site_id>/integrations", methods=["GET", "POST"])
def integrations(site_id):
    """The site's Shopify and WooCommerce order webhooks: address, secret and cart link."""
    site = _site_or_404(site_id)
    if request.method == "GET":
        return _page(site, _state(site))
    posted = forms.read_form(request.form)
    state = {
        "integrations": {
            platform: {"link_cart": change["link_cart"]}
            for platform, change in integration_changes(posted).items()
        }
    }
    try:
        data = load_or_raise(_site_patch, {"integrations": integration_changes(posted)})
        catalog.update_site(site, data)
    except ValidationFailed as err:
        return _page(site, state, forms.FieldErrors(err.fields), 400)
    flash("Integrations saved.", "success")
    return redirect(url_for("admin.integrations", site_id=site.id))
