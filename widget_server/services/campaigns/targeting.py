"""Whether a campaign's targeting rules admit a visitor on a page.

Each check returns None when it passes, or the reason it failed in words; the reasons feed the
snippet's debug mode.
"""

from dataclasses import dataclass, field
from functools import cached_property

from ..funnel.rules import attribute_holds
from .site_config import CampaignConfig
from .url_patterns import fold


@dataclass(frozen=True)
class PageContext:
    """What decide knows about this visitor on this page."""

    url: str
    device: str | None
    is_new: bool
    order_count: int
    stage: str | None
    attributes: dict = field(default_factory=dict)
    cart_value: float | None = None
    cart_items: int | None = None

    @cached_property
    def folded_url(self) -> str:
        """The URL case-folded once for every pattern of every campaign (:func:`fold`)."""
        return fold(self.url)


def rejection(campaign: CampaignConfig, page: PageContext) -> str | None:
    """The first targeting rule that keeps this campaign off this page, or None."""
    rules = campaign.targeting
    if campaign.url_include and not any(
        p.matches_folded(page.folded_url) for p in campaign.url_include
    ):
        return "url not in url_include"
    if any(p.matches_folded(page.folded_url) for p in campaign.url_exclude):
        return "url in url_exclude"
    if rules.get("devices") and page.device not in rules["devices"]:
        return f"device {page.device or 'unknown'} not targeted"
    wanted = rules.get("visitor", "any")
    if wanted == "new" and not page.is_new:
        return "targets new visitors"
    if wanted == "returning" and page.is_new:
        return "targets returning visitors"
    if "orders_min" in rules and page.order_count < rules["orders_min"]:
        return f"needs at least {rules['orders_min']} orders"
    if "orders_max" in rules and page.order_count > rules["orders_max"]:
        return f"needs at most {rules['orders_max']} orders"
    if rules.get("stages_in") and page.stage not in rules["stages_in"]:
        return f"stage {page.stage or 'none'} not in {rules['stages_in']}"
    if rules.get("stages_not_in") and page.stage in rules["stages_not_in"]:
        return f"stage {page.stage} excluded"
    for key, rule in campaign.attribute_rules:
        if not attribute_holds(rule, page.attributes):
            return f"attribute {key} does not match"
    return _cart_rejection(rules, page)


def _cart_rejection(rules: dict, page: PageContext) -> str | None:
    bounds = (
        ("cart_value_min", page.cart_value, lambda have, bound: have >= bound),
        ("cart_value_max", page.cart_value, lambda have, bound: have <= bound),
        ("cart_items_min", page.cart_items, lambda have, bound: have >= bound),
        ("cart_items_max", page.cart_items, lambda have, bound: have <= bound),
    )
    for name, have, ok in bounds:
        if name in rules and (have is None or not ok(have, rules[name])):
            return f"cart does not meet {name}"
    return None
