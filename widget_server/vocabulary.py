"""The product's words, each defined once: what a campaign, a question, a rule or a code may be.

Models, schemas, services and the admin page all import these names from here, so that the API,
the forms and the code that acts on them can never disagree. Pure: no Flask, no database; the
A/B names come from the engine itself (``ab.policy``), so a method or metric it can judge is one
the API accepts, with the defaults it uses.
"""

import re
from dataclasses import asdict

from ab import guardrails as ab_guardrails
from ab import policy as ab_policy

# -- campaigns ------------------------------------------------------------------------------------

CAMPAIGN_KINDS = ("survey", "wheel")
CAMPAIGN_STATUSES = ("draft", "running", "paused", "completed")

#: The campaign status machine: each action an admin may take, the statuses it is allowed from,
#: and the status it leads to.
STATUS_TRANSITIONS = {
    "start": (("draft", "paused"), "running"),
    "pause": (("running",), "paused"),
    "complete": (("running", "paused"), "completed"),
}


#: An edit of these fields of a test in progress (running or paused) starts a new phase: they
#: change what the visitors see, or which visitors see it.
PHASE_CAMPAIGN_FIELDS = ("targeting", "trigger")
PHASE_VARIANT_FIELDS = ("content", "weight")
#: The statuses of a test in progress, whose edits start phases.
PHASE_STATUSES = ("running", "paused")
#: What a new phase does with the assignments: keep them (``sticky``) or assign everyone afresh.
PHASE_ASSIGNMENTS = ("sticky", "rerandomize")


def actions_from(status: str) -> tuple[str, ...]:
    """The actions allowed from ``status``, in the machine's order (the admin page's buttons)."""
    return tuple(
        action for action, (allowed_from, _) in STATUS_TRANSITIONS.items() if status in allowed_from
    )


# -- A/B settings ---------------------------------------------------------------------------------

METHODS = ab_policy.METHODS
METRICS = ab_policy.METRICS
#: Metrics judged as a mean per visitor; the others are 0/1 conversions per visitor.
MEAN_METRICS = ab_policy.MEAN_METRICS
#: What a campaign may name in ``ab.guardrails``: revenue per visitor, order rate, close rate.
GUARDRAIL_METRICS = ab_guardrails.GUARDRAIL_METRICS
#: The guardrails of a campaign that names none (``ab.guardrails`` left out) on a site that
#: reports orders; a campaign judged on one of them leaves it out.
DEFAULT_GUARDRAILS = ({"metric": "revenue", "max_drop": 0.0}, {"metric": "order", "max_drop": 0.0})
#: ``post_stratification`` (default) or ``none``: see ab/stratification.py.
ADJUSTMENTS = ab_policy.ADJUSTMENTS
#: What the policy's decision may say: continue, promote, hold (a guardrail), stop.
DECISION_ACTIONS = ab_policy.ACTIONS

#: What a campaign's ``ab`` settings default to: the engine's own defaults, for the settings a
#: campaign stores (a campaign stored before a setting existed reads it from here).
_AB_SETTINGS = (
    "metric",
    "method",
    "alpha",
    "min_visitors_per_variant",
    "min_running_days",
    "min_lift",
    "max_duration_days",
    "max_visitors_per_variant",
    "adjustment",
)
AB_DEFAULTS = {
    name: value for name, value in asdict(ab_policy.Settings()).items() if name in _AB_SETTINGS
}

# -- survey questions -----------------------------------------------------------------------------

QUESTION_TYPES = ("single_choice", "multi_choice", "scale", "nps", "rating", "text", "email")
CHOICE_TYPES = ("single_choice", "multi_choice")
#: Question types whose answer is a number, which scores on the step's dimension.
NUMERIC_TYPES = ("scale", "nps", "rating")

# -- outgoing webhooks ----------------------------------------------------------------------------

#: A spin handed out a coupon code.
COUPON_WON = "coupon.won"
#: An order redeemed a code a wheel handed out (a pool's code, or the buyer's own fixed code).
COUPON_REDEEMED = "coupon.redeemed"
#: The promotion policy (or an admin) promoted a variant, stopped a test or undid either.
DECISION_MADE = "decision.made"
#: A visitor moved to another funnel stage.
STAGE_CHANGED = "stage.changed"
RESPONSE_COMPLETED = "response.completed"
#: A response left unfinished: no answer for ``RESPONSE_PARTIAL_AFTER_MIN`` minutes.
RESPONSE_PARTIAL = "response.partial"
#: Every event a site's ``settings.webhook`` may subscribe to (the ``type`` of each body).
WEBHOOK_EVENTS = (
    COUPON_WON,
    COUPON_REDEEMED,
    DECISION_MADE,
    STAGE_CHANGED,
    RESPONSE_COMPLETED,
    RESPONSE_PARTIAL,
)
RESPONSE_WEBHOOK_EVENTS = (RESPONSE_COMPLETED, RESPONSE_PARTIAL)
#: ``json``: the signed JSON body; ``slack``: a Slack incoming webhook's ``{"text": ...}``.
RESPONSE_WEBHOOK_FORMATS = ("json", "slack")
#: Where a delivery stands: waiting for its next attempt, answered with a 2xx, or given up
#: (every attempt failed, or the receiver answered 410 Gone).
DELIVERY_STATUSES = ("pending", "delivered", "failed")

# -- attribute and stage rules --------------------------------------------------------------------

#: Numeric comparisons of the rule language (services/funnel/rules.py evaluates them).
COMPARISONS = ("gte", "gt", "lte", "lt", "eq")
#: What a rule on a custom attribute may say: ``{"attribute": "plan", "equals": "gold"}``...
ATTRIBUTE_OPS = ("equals", "in", "exists", *COMPARISONS)
#: The targeting form of an attribute rule: ``{"key": "plan", "op": "range", "min": 2}``; it is
#: compiled into the rule language above, so one evaluator judges both.
TARGETING_ATTRIBUTE_OPS = ("equals", "in", "range")

# -- coupon codes ---------------------------------------------------------------------------------

#: An imported code: printable ASCII without spaces, as shops' coupon systems accept.
CODE_PATTERN = re.compile(r"^[\x21-\x7e]{1,100}\Z")
#: What may come before the random part of a generated code.
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{0,40}\Z")
#: Generated codes use 32 symbols without look-alikes (no 0/O, 1/I): 5 bits per symbol.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
#: 12 symbols = 60 bits from ``secrets``: guessing one of a million live codes takes ~2^40 tries.
MIN_RANDOM_SYMBOLS = 12
MAX_RANDOM_SYMBOLS = 32
MAX_GENERATE = 100_000
CODE_STATUSES = ("available", "assigned", "redeemed")
#: How long a won code may stay valid (a wheel slice's ``expires_in_minutes``): 1 minute to 7 days.
MAX_CODE_VALID_MINUTES = 7 * 24 * 60

# -- store platforms ------------------------------------------------------------------------------

SHOPIFY = "shopify"
WOOCOMMERCE = "woocommerce"
#: Platforms whose own order webhooks a site may receive (``sites.integrations``).
STORE_PLATFORMS = (SHOPIFY, WOOCOMMERCE)
#: The name under which the snippet writes the visitor id into the platform's cart (a Shopify
#: cart attribute, a WooCommerce order meta key), and the order webhook carries it back.
CART_LINK_KEY = "_funnelcake_visitor"
#: WooCommerce's order statuses that count as an order: a payment taken or awaited by the shop
#: (``on-hold``: a bank transfer or cheque the shop waits for). The others (``pending``,
#: ``failed``, ``cancelled``, ``refunded``, ``checkout-draft``, ``trash``, a plugin's own) are
#: acknowledged and ignored until an update arrives with one of these.
WOOCOMMERCE_COUNTED_STATUSES = ("processing", "completed", "on-hold")
