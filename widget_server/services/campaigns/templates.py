"""Ready-made campaigns the owner starts from: each template is a draft in the admin API's shape
(the body of ``POST sites/<id>/campaigns``), with targeting, trigger, frequency and its variants.

The drafts are plain data: the views load them through the campaign schema like any other body
(``tests/campaigns/test_templates.py`` loads every one), so a template is never stored unchecked.
"""

from collections.abc import Callable
from dataclasses import dataclass

from ...errors import ValidationFailed

#: The code of the spin-to-win's prize slice until the owner chooses a pool or types a code;
#: a wheel still handing it out cannot start (``catalog``).
PLACEHOLDER_CODE = "CHANGE-ME-10OFF"

AGREEMENT_SCALE = {
    "min": 1,
    "max": 5,
    "min_label": "Strongly disagree",
    "max_label": "Strongly agree",
}

#: Pages no survey should interrupt: paying is the one thing the visitor came to do.
NOT_WHILE_PAYING = ["/checkout*", "/checkouts/*"]


def loyalty_questionnaire(intro: str) -> dict:
    """Three Likert statements, one per loyalty dimension; low emotional scores skip ahead."""
    return {
        "title": intro,
        "steps": [
            {
                "id": "emotional",
                "type": "scale",
                "question": "I feel good about shopping here.",
                "dimension": "emotional",
                "scale": AGREEMENT_SCALE,
                # Someone who does not like the shop is not asked about buying again.
                "next": [{"when": {"lte": 2}, "goto": "action"}],
            },
            {
                "id": "intentional",
                "type": "scale",
                "question": "I intend to buy from this shop again.",
                "dimension": "intentional",
                "scale": AGREEMENT_SCALE,
            },
            {
                "id": "action",
                "type": "single_choice",
                "question": "Have you recommended us to a friend?",
                "options": [
                    {"id": "yes", "label": "Yes, already", "dimension": "action", "score": 5},
                    {
                        "id": "would",
                        "label": "Not yet, but I would",
                        "dimension": "action",
                        "score": 3,
                    },
                    {"id": "no", "label": "No", "dimension": "action", "score": 1},
                ],
            },
        ],
        "thank_you": {"title": "Thank you!", "message": "Your answers help us get better."},
    }


def _options(*labels: tuple[str, str]) -> list[dict]:
    return [{"id": option_id, "label": label} for option_id, label in labels]


def _survey(**settings) -> dict:
    """A survey draft tested with the sequential method on completions, shown once per visitor."""
    return {
        "kind": "survey",
        "priority": 0,
        "ab": {"metric": "completion", "method": "sequential"},
        **settings,
    }


def _loyalty() -> dict:
    return _survey(
        targeting={"url_exclude": NOT_WHILE_PAYING, "visitor": "returning"},
        trigger={"type": "delay", "seconds": 5},
        frequency={"stop_after_complete": True, "days_after_close": 14},
        variants=[
            {
                "name": "A: plain",
                "is_control": True,
                "content": loyalty_questionnaire("Three quick questions"),
            },
            {
                "name": "B: friendly",
                "content": loyalty_questionnaire("Help us get better (30 seconds)"),
            },
        ],
    )


def _nps() -> dict:
    return _survey(
        targeting={"url_exclude": NOT_WHILE_PAYING, "orders_min": 1},
        trigger={"type": "delay", "seconds": 8},
        # A quarterly pulse: the same customers again every 90 days, each time a new round.
        frequency={"stop_after_complete": True, "days_after_close": 30, "repeat_after_days": 90},
        variants=[
            {
                "name": "A",
                "is_control": True,
                "content": {
                    "title": "One question",
                    "steps": [
                        {
                            "id": "nps",
                            "type": "nps",
                            "question": "How likely are you to recommend us to a friend?",
                            "scale": {
                                "min": 0,
                                "max": 10,
                                "min_label": "Not at all likely",
                                "max_label": "Very likely",
                            },
                        },
                        {
                            "id": "reason",
                            "type": "text",
                            "question": "What is the main reason for your score?",
                            "required": False,
                            "placeholder": "A sentence is plenty",
                        },
                    ],
                    "thank_you": {"title": "Thank you!", "message": "We read every answer."},
                },
            }
        ],
    )


def _csat() -> dict:
    return _survey(
        targeting={"url_exclude": NOT_WHILE_PAYING},
        trigger={"type": "page_views", "count": 3},
        frequency={"stop_after_complete": True, "days_after_close": 30},
        variants=[
            {
                "name": "A",
                "is_control": True,
                "content": {
                    "steps": [
                        {
                            "id": "csat",
                            "type": "rating",
                            "question": "How satisfied are you with your visit today?",
                            "dimension": "csat",
                            "scale": {"min": 1, "max": 5},
                            # Only the unhappy are asked why: the rest are done.
                            "next": [{"when": {"gte": 4}, "goto": "end"}],
                        },
                        {
                            "id": "improve",
                            "type": "text",
                            "question": "What should we improve?",
                            "required": False,
                        },
                    ],
                    "thank_you": {"title": "Thanks for telling us!"},
                },
            }
        ],
    )


def _ces() -> dict:
    return _survey(
        targeting={"url_include": ["/search*", "/collections/*", "/products/*"]},
        trigger={"type": "inactivity", "seconds": 20},
        frequency={"stop_after_complete": True, "days_after_close": 30},
        variants=[
            {
                "name": "A",
                "is_control": True,
                "content": {
                    "steps": [
                        {
                            "id": "effort",
                            "type": "scale",
                            "question": "It was easy to find what I was looking for.",
                            "dimension": "ces",
                            "scale": {
                                "min": 1,
                                "max": 7,
                                "min_label": "Strongly disagree",
                                "max_label": "Strongly agree",
                            },
                            "next": [{"when": {"gte": 5}, "goto": "end"}],
                        },
                        {
                            "id": "hard",
                            "type": "text",
                            "question": "What made it hard?",
                            "required": False,
                        },
                    ],
                    "thank_you": {"title": "Thank you!", "message": "It helps us fix the shop."},
                },
            }
        ],
    )


def _why_no_purchase_content(question: str) -> dict:
    return {
        "steps": [
            {
                "id": "reason",
                "type": "single_choice",
                "question": question,
                "options": _options(
                    ("price", "The price is too high"),
                    ("shipping", "Shipping costs or delivery time"),
                    ("browsing", "Just looking for now"),
                    ("payment", "My payment method is missing"),
                    ("trust", "I am not sure about the shop"),
                    ("other", "Something else"),
                ),
                "next": [{"when": {"in": ["other", "trust"]}, "goto": "details"}, {"goto": "end"}],
            },
            {
                "id": "details",
                "type": "text",
                "question": "Tell us more?",
                "required": False,
            },
        ],
        "thank_you": {"title": "Thank you!", "message": "Your cart is saved for you."},
    }


def _why_no_purchase() -> dict:
    return _survey(
        priority=10,
        targeting={"url_include": ["/cart*"], "cart_value_min": 1, "cart_items_min": 1},
        trigger={"type": "exit_intent"},
        frequency={"stop_after_complete": True, "days_after_close": 7, "max_impressions": 3},
        variants=[
            {
                "name": "A: direct",
                "is_control": True,
                "content": _why_no_purchase_content("What stopped you from checking out today?"),
            },
            {
                "name": "B: gentle",
                "content": _why_no_purchase_content("Before you go: what is holding you back?"),
            },
        ],
    )


def _exit() -> dict:
    return _survey(
        targeting={"url_exclude": [*NOT_WHILE_PAYING, "/cart*"]},
        trigger={"type": "exit_intent"},
        frequency={"stop_after_complete": True, "days_after_close": 30, "max_impressions": 2},
        variants=[
            {
                "name": "A",
                "is_control": True,
                "content": {
                    "title": "Before you go",
                    "steps": [
                        {
                            "id": "found",
                            "type": "single_choice",
                            "question": "Did you find what you were looking for?",
                            "options": _options(("yes", "Yes"), ("partly", "Partly"), ("no", "No")),
                            "next": [{"when": {"equals": "yes"}, "goto": "end"}],
                        },
                        {
                            "id": "looking_for",
                            "type": "text",
                            "question": "What were you looking for?",
                            "required": False,
                        },
                    ],
                    "thank_you": {"title": "Thank you!", "message": "See you soon."},
                },
            }
        ],
    )


def _post_purchase() -> dict:
    return _survey(
        targeting={"url_include": ["/thank-you*", "/thank_you*", "/checkouts/*/thank_you*"]},
        trigger={"type": "delay", "seconds": 2},
        frequency={"stop_after_complete": True, "days_after_close": 30},
        variants=[
            {
                "name": "A",
                "is_control": True,
                "content": {
                    "title": "Thanks for your order!",
                    "steps": [
                        {
                            "id": "source",
                            "type": "single_choice",
                            "question": "How did you hear about us?",
                            "options": _options(
                                ("search", "Search engine"),
                                ("social", "Social media"),
                                ("friend", "A friend"),
                                ("ad", "An ad"),
                                ("other", "Somewhere else"),
                            ),
                        },
                        {
                            "id": "checkout",
                            "type": "rating",
                            "question": "How easy was checking out?",
                            "dimension": "csat",
                            "scale": {"min": 1, "max": 5},
                        },
                    ],
                    "thank_you": {"title": "Thank you!", "message": "Enjoy your purchase."},
                },
            }
        ],
    )


def _spin_to_win() -> dict:
    return {
        "kind": "wheel",
        "priority": 5,
        "targeting": {"url_exclude": [*NOT_WHILE_PAYING, "/cart*"], "visitor": "new"},
        "trigger": {"type": "delay", "seconds": 10},
        "frequency": {"stop_after_complete": True, "days_after_close": 3},
        "ab": {"metric": "coupon_redemption", "method": "sequential"},
        "variants": [
            {
                "name": "A",
                "is_control": True,
                "content": {
                    "title": "Spin to win",
                    "message": "One spin per visitor. Good luck!",
                    "button_label": "Spin",
                    "slices": [
                        {
                            "label": "10% off",
                            "color": "#e76f51",
                            "weight": 30,
                            "reward": {"type": "code", "code": PLACEHOLDER_CODE},
                            "expires_in_minutes": 60 * 24,
                        },
                        {
                            "label": "No prize",
                            "color": "#264653",
                            "weight": 40,
                            "reward": {"type": "none"},
                        },
                        {
                            "label": "Free shipping",
                            "color": "#2a9d8f",
                            "weight": 20,
                            "reward": {"type": "code", "code": "FREESHIP"},
                        },
                        {
                            "label": "Next time",
                            "color": "#f4a261",
                            "weight": 10,
                            "reward": {"type": "none"},
                        },
                    ],
                    "email_capture": {
                        "enabled": True,
                        "required": False,
                        "consent_text": "Send me offers by e-mail (unsubscribe any time).",
                    },
                },
            }
        ],
    }


@dataclass(frozen=True)
class CampaignTemplate:
    """One entry of the gallery: what the owner reads, and the draft it creates."""

    id: str
    name: str
    description: str
    kind: str
    build: Callable[[], dict]

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "draft": draft(self.id),
        }


TEMPLATES = (
    CampaignTemplate(
        "loyalty",
        "Loyalty questionnaire",
        "Three statements that place returning visitors in the loyalty funnel.",
        "survey",
        _loyalty,
    ),
    CampaignTemplate(
        "nps",
        "Net Promoter Score",
        "0-10 “would you recommend us?” for customers, asked again every quarter.",
        "survey",
        _nps,
    ),
    CampaignTemplate(
        "csat",
        "Customer satisfaction (CSAT)",
        "Five stars after a few pages; the unhappy are asked what to improve.",
        "survey",
        _csat,
    ),
    CampaignTemplate(
        "ces",
        "Customer effort (CES)",
        "“Was it easy to find?” when a visitor stalls on search or product pages.",
        "survey",
        _ces,
    ),
    CampaignTemplate(
        "why_no_purchase",
        "Why didn't you buy?",
        "Asks why when a visitor leaves the cart with something in it.",
        "survey",
        _why_no_purchase,
    ),
    CampaignTemplate(
        "exit",
        "Exit survey",
        "“Did you find what you were looking for?” as a visitor leaves.",
        "survey",
        _exit,
    ),
    CampaignTemplate(
        "post_purchase",
        "Post-purchase",
        "How buyers found you and how checkout went, on the thank-you page.",
        "survey",
        _post_purchase,
    ),
    CampaignTemplate(
        "spin_to_win",
        "Spin to win",
        "A discount wheel for new visitors; its prize comes from one of your coupon pools.",
        "wheel",
        _spin_to_win,
    ),
)
_BY_ID = {template.id: template for template in TEMPLATES}


def get_template(template_id: str) -> CampaignTemplate:
    """:raise ValidationFailed: naming ``template`` when there is no such template."""
    if template_id not in _BY_ID:
        raise ValidationFailed(
            "No such campaign template.",
            {"template": [f"Use one of: {', '.join(_BY_ID)}."]},
        )
    return _BY_ID[template_id]


def draft(template_id: str, name: str | None = None, pool_id: int | None = None) -> dict:
    """The template's campaign body, named ``name`` (default: the template's name); with
    ``pool_id`` the prize slice hands out that pool's codes instead of the placeholder code.

    :raise ValidationFailed: naming ``template``, or ``pool_id`` for a template without a prize.
    """
    template = get_template(template_id)
    body = {"name": name or template.name, **template.build()}
    if pool_id is None:
        return body
    prizes = [
        s
        for variant in body["variants"]
        for s in variant["content"].get("slices", ())
        if s["reward"] == {"type": "code", "code": PLACEHOLDER_CODE}
    ]
    if not prizes:
        raise ValidationFailed(
            "This template hands out no pool's codes.",
            {"pool_id": ["Only a template with a prize slice takes a pool."]},
        )
    for prize in prizes:
        prize["reward"] = {"type": "pool", "pool_id": pool_id}
    return body


def hands_out_placeholder(content: dict) -> bool:
    """Whether a wheel's slice still hands out :data:`PLACEHOLDER_CODE`."""
    return any(
        (s.get("reward") or {}).get("code") == PLACEHOLDER_CODE for s in content.get("slices") or ()
    )
