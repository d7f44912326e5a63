"""Between HTML forms and the API's JSON: the admin page posts the very payloads the API takes.

Form fields are named by the dotted path of the value in the API payload
(``content.steps.1.options.0.label``), so the API's validation errors, which name fields the same
way (``ValidationFailed.fields``), land next to the input they are about. A form is read into a
*state* (nested dicts and lists of the strings typed, shown again as typed when something is
wrong) and the state is turned into the payload the marshmallow schemas load.
"""

import json
import re
from collections.abc import Iterable

from werkzeug.datastructures import MultiDict

from ..vocabulary import CHOICE_TYPES, NUMERIC_TYPES

#: Fields posted as several values (checkbox groups) rather than one.
MULTI_VALUE = {"targeting.devices", "targeting.stages_in", "targeting.stages_not_in"}
#: Fields typed one item per line.
LINE_LISTS = {"targeting.url_include", "targeting.url_exclude"}
#: Form fields that are not payload fields.
CONTROL_FIELDS = {"csrf_token", "action", "mode", "content_json"}
CONDITION_OPS = ("always", "equals", "in", "gte", "lte")
TRIGGER_PARAMETERS = {
    "delay": "seconds",
    "inactivity": "seconds",
    "scroll": "percent",
    "page_views": "count",
}


# -- form <-> state ---------------------------------------------------------------------------


def read_form(form: MultiDict) -> dict:
    """The posted form as nested dicts and lists; all-digit keys become list positions.

    A boolean is posted as a hidden ``false`` followed by a checkbox ``true``: the last value wins.
    """
    state: dict = {}
    for key in form:
        if key in CONTROL_FIELDS:
            continue
        values = form.getlist(key)
        value = values if key in MULTI_VALUE else values[-1]
        node = state
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return _lists(state)


def _lists(node):
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_lists(node[k]) for k in sorted(node, key=int)]
        return {k: _lists(v) for k, v in node.items()}
    return node


def _text(value) -> str:
    """A stored value as the form shows it: 5.0 -> "5", True -> "true"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_true(value) -> bool:
    return str(value).lower() in {"true", "on", "1", "yes"}


def _present(value) -> bool:
    return value is not None and str(value).strip() != ""


def _number_or_text(value: str):
    """An option id stays text, a number typed for a numeric question becomes a number."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


def _int_or_text(value: str):
    text = str(value).strip()
    # isdigit() alone is true for "²", which int() refuses: only ASCII digits are a number here.
    return int(text) if text.isascii() and text.isdigit() else text


def slugify(text: str, fallback: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")[:64]
    return slug or fallback


def has_locales(content: dict) -> bool:
    """Texts per locale are edited as JSON: the form edits one plain text per field."""
    texts = [content.get(k) for k in ("title", "message", "button_label")]
    for step in content.get("steps") or []:
        texts += [step.get(k) for k in ("question", "description", "placeholder")]
        texts += [o.get("label") for o in step.get("options") or []]
        texts += [(step.get("scale") or {}).get(k) for k in ("min_label", "max_label")]
    texts += [s.get("label") for s in content.get("slices") or []]
    thank_you = content.get("thank_you") or {}
    texts += [thank_you.get("title"), thank_you.get("message")]
    texts += [(thank_you.get("reward") or {}).get("label")]
    texts.append((content.get("email_capture") or {}).get("consent_text"))
    return any(isinstance(t, dict) for t in texts)


# -- survey and wheel content -----------------------------------------------------------------


def blank_option(index: int) -> dict:
    return {"id": "", "label": "", "dimension": "", "score": ""}


def blank_step(existing_ids: Iterable[str]) -> dict:
    taken = set(existing_ids)
    number = 1
    while f"q{number}" in taken:
        number += 1
    return {
        "id": f"q{number}",
        "type": "single_choice",
        "question": "",
        "description": "",
        "required": "true",
        "placeholder": "",
        "dimension": "",
        "scale": {"min": "1", "max": "5", "min_label": "", "max_label": ""},
        "options": [blank_option(0), blank_option(1)],
        "next": [],
    }


def blank_rule() -> dict:
    return {"op": "always", "value": "", "goto": ""}


def blank_slice(index: int) -> dict:
    colours = ("#f4a261", "#2a9d8f", "#e76f51", "#264653", "#e9c46a", "#8ab17d")
    return {
        "label": "",
        "color": colours[index % len(colours)],
        "weight": "1",
        "reward": {"type": "none", "pool_id": "", "code": ""},
        "expires_in_minutes": "",
    }


def starter_content(kind: str) -> dict:
    """What a new variant's form starts with: one question, or a two-slice wheel."""
    if kind == "wheel":
        return content_to_state(
            "wheel",
            {
                "title": "Spin to win",
                "slices": [
                    {
                        "label": "10% off",
                        "color": "#2a9d8f",
                        "weight": 1.0,
                        "reward": {"type": "code", "code": "SAVE10"},
                    },
                    {
                        "label": "No luck this time",
                        "color": "#f4a261",
                        "weight": 3.0,
                        "reward": {"type": "none"},
                    },
                ],
            },
        )
    step = blank_step([])
    step["question"] = "How did you hear about us?"
    step["options"] = [
        {"id": "search", "label": "Search engine", "dimension": "", "score": ""},
        {"id": "friend", "label": "A friend", "dimension": "", "score": ""},
    ]
    return {
        "title": "",
        "steps": [step],
        "thank_you": {"title": "Thank you!", "message": "", "reward": {"campaign_id": ""}},
    }


def content_to_state(kind: str, content: dict) -> dict:
    """A stored variant's content as the form shows it."""
    if kind == "wheel":
        email = content.get("email_capture") or {}
        return {
            "title": _text(content.get("title")),
            "message": _text(content.get("message")),
            "button_label": _text(content.get("button_label")),
            "email_capture": {
                "enabled": _text(bool(email.get("enabled", False))),
                "required": _text(bool(email.get("required", True))),
                "consent_text": _text(email.get("consent_text")),
            },
            "slices": [
                {
                    "label": _text(s.get("label")),
                    "color": _text(s.get("color") or "#f4a261"),
                    "weight": _text(s.get("weight")),
                    "reward": {
                        "type": (s.get("reward") or {}).get("type", "none"),
                        "pool_id": _text((s.get("reward") or {}).get("pool_id")),
                        "code": _text((s.get("reward") or {}).get("code")),
                    },
                    "expires_in_minutes": _text(s.get("expires_in_minutes")),
                }
                for s in content.get("slices") or []
            ],
        }
    steps = []
    for step in content.get("steps") or []:
        scale = step.get("scale") or {}
        steps.append(
            {
                "id": _text(step.get("id")),
                "type": step.get("type", "single_choice"),
                "question": _text(step.get("question")),
                "description": _text(step.get("description")),
                "required": _text(step.get("required", True)),
                "placeholder": _text(step.get("placeholder")),
                "dimension": _text(step.get("dimension")),
                "scale": {
                    "min": _text(scale.get("min", 1)),
                    "max": _text(scale.get("max", 5)),
                    "min_label": _text(scale.get("min_label")),
                    "max_label": _text(scale.get("max_label")),
                },
                "options": [
                    {k: _text(o.get(k)) for k in ("id", "label", "dimension", "score")}
                    for o in step.get("options") or []
                ],
                "next": [_rule_to_state(rule) for rule in step.get("next") or []],
            }
        )
    thank_you = content.get("thank_you") or {}
    reward = thank_you.get("reward") or {}
    return {
        "title": _text(content.get("title")),
        "steps": steps,
        "hidden_fields": [
            {k: _text(f.get(k)) for k in ("name", "source", "key")}
            for f in content.get("hidden_fields") or []
        ],
        "thank_you": {
            "title": _text(thank_you.get("title")),
            "message": _text(thank_you.get("message")),
            "reward": {
                "campaign_id": _text(reward.get("campaign_id")),
                "label": _text(reward.get("label")),
            },
        },
    }


def _rule_to_state(rule: dict) -> dict:
    when = rule.get("when") or {}
    if not when:
        return {"op": "always", "value": "", "goto": rule.get("goto", "")}
    op = next(iter(when))
    value = when[op]
    text = ", ".join(_text(v) for v in value) if isinstance(value, list) else _text(value)
    return {"op": op, "value": text, "goto": rule.get("goto", "")}


def _optional_texts(source: dict, names: Iterable[str]) -> dict:
    return {n: source[n] for n in names if _present(source.get(n))}


def state_to_content(kind: str, state: dict) -> dict:
    """The content payload of a variant form; empty rows are left out, types converted."""
    if kind == "wheel":
        return _wheel_payload(state)
    payload = _optional_texts(state, ("title",))
    steps = []
    for step in _rows(state.get("steps")):
        steps.append(_step_payload(step))
    payload["steps"] = steps
    thank_you = state.get("thank_you") or {}
    thank_you_payload = _optional_texts(thank_you, ("title", "message"))
    reward = thank_you.get("reward") or {}
    if _present(reward.get("campaign_id")):
        thank_you_payload["reward"] = {
            "campaign_id": _int_or_text(reward["campaign_id"]),
            **_optional_texts(reward, ("label",)),
        }
    if thank_you_payload:
        payload["thank_you"] = thank_you_payload
    hidden = [
        {k: str(row.get(k, "")).strip() for k in ("name", "source", "key")}
        for row in _rows(state.get("hidden_fields"))
        if _row_filled(row, ("name", "key"))
    ]
    if hidden:
        payload["hidden_fields"] = hidden
    return payload


def _rows(items) -> list:
    """List rows that have anything typed in them (a blank added row is ignored)."""
    rows = items if isinstance(items, list) else []
    return [r for r in rows if isinstance(r, dict)]


def _row_filled(row: dict, names: Iterable[str]) -> bool:
    return any(_present(row.get(n)) for n in names)


def _step_payload(step: dict) -> dict:
    kind = str(step.get("type", "")).strip()
    payload = {
        "id": str(step.get("id", "")).strip(),
        "type": kind,
        "question": step.get("question", ""),
        "required": _is_true(step.get("required", "false")),
    }
    payload.update(_optional_texts(step, ("description",)))
    if kind in ("text", "email"):
        payload.update(_optional_texts(step, ("placeholder",)))
    if kind in NUMERIC_TYPES and _present(step.get("dimension")):
        payload["dimension"] = str(step["dimension"]).strip()
    if kind == "scale":
        scale = step.get("scale") or {}
        payload["scale"] = _optional_texts(scale, ("min", "max", "min_label", "max_label"))
    options = [o for o in _rows(step.get("options")) if _row_filled(o, ("id", "label"))]
    if kind in CHOICE_TYPES or options:
        payload["options"] = []
        for index, option in enumerate(options):
            option_payload = {
                "id": str(option.get("id", "")).strip()
                or slugify(option.get("label", ""), f"option_{index + 1}"),
                "label": option.get("label", ""),
            }
            if _present(option.get("dimension")):
                option_payload["dimension"] = str(option["dimension"]).strip()
            if _present(option.get("score")):
                option_payload["score"] = str(option["score"]).strip()
            payload["options"].append(option_payload)
    rules = [r for r in _rows(step.get("next")) if _present(r.get("goto"))]
    if rules:
        payload["next"] = [_rule_payload(rule, kind) for rule in rules]
    return payload


def _rule_payload(rule: dict, kind: str) -> dict:
    op = rule.get("op", "always")
    payload = {"goto": str(rule.get("goto", "")).strip()}
    value = str(rule.get("value", "")).strip()
    if op not in CONDITION_OPS or op == "always":
        return payload
    numeric = kind in NUMERIC_TYPES
    if op == "in":
        items = [v.strip() for v in value.split(",") if v.strip()]
        payload["when"] = {"in": [_number_or_text(v) if numeric else v for v in items]}
    elif op == "equals":
        payload["when"] = {"equals": (_number_or_text(value) if numeric else value) or None}
    else:
        payload["when"] = {op: value}
    return payload


def _wheel_payload(state: dict) -> dict:
    payload = _optional_texts(state, ("title", "message", "button_label"))
    email = state.get("email_capture") or {}
    if _is_true(email.get("enabled", "false")):
        payload["email_capture"] = {
            "enabled": True,
            "required": _is_true(email.get("required", "false")),
            **_optional_texts(email, ("consent_text",)),
        }
    slices = []
    for row in _rows(state.get("slices")):
        if not _row_filled(row, ("label",)) and not _present((row.get("reward") or {}).get("code")):
            continue
        reward = row.get("reward") or {}
        reward_type = reward.get("type", "none")
        reward_payload = {"type": reward_type}
        if reward_type == "pool" and _present(reward.get("pool_id")):
            reward_payload["pool_id"] = _int_or_text(reward["pool_id"])
        if reward_type == "code" and _present(reward.get("code")):
            reward_payload["code"] = str(reward["code"]).strip()
        slice_payload = {
            "label": row.get("label", ""),
            "color": str(row.get("color") or "#f4a261").strip(),
            "weight": str(row.get("weight", "")).strip(),
            "reward": reward_payload,
        }
        # A "no prize" slice's leftover expiry is dropped, like its leftover code.
        if reward_type != "none" and _present(row.get("expires_in_minutes")):
            slice_payload["expires_in_minutes"] = _int_or_text(row["expires_in_minutes"])
        slices.append(slice_payload)
    payload["slices"] = slices
    return payload


def apply_row_action(state: dict, action: str) -> bool:
    """``add:<path>`` appends a blank row to a list, ``remove:<path>.<n>`` deletes one.

    Lets the form grow and shrink without JavaScript. :return: whether the action was one.
    """
    verb, _, path = action.partition(":")
    if verb not in ("add", "remove") or not path:
        return False
    parts = path.split(".")
    if parts[0] != "content" or len(parts) < 2:
        return False
    if verb == "remove":
        *parts, index = parts
        if not index.isdigit():
            return False
    node = state
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    items = node[int(last)] if isinstance(node, list) else node.setdefault(last, [])
    if not isinstance(items, list):
        items = []
        node[last] = items
    if verb == "remove":
        if int(index) < len(items):
            del items[int(index)]
        return True
    if last == "steps":
        items.append(blank_step(s.get("id", "") for s in items))
    elif last == "options":
        items.append(blank_option(len(items)))
    elif last == "next":
        items.append(blank_rule())
    elif last == "slices":
        items.append(blank_slice(len(items)))
    elif last == "hidden_fields":
        items.append({"name": "", "source": "query", "key": ""})
    return True


# -- variant and campaign ---------------------------------------------------------------------


def variant_to_state(variant) -> dict:
    return {
        "name": variant.name,
        "weight": _text(variant.weight),
        "is_control": _text(variant.is_control),
        "content": content_to_state(variant.campaign.kind, variant.content or {}),
    }


def state_to_variant(kind: str, state: dict) -> dict:
    return {
        "name": state.get("name", ""),
        "weight": str(state.get("weight", "")).strip() or "1",
        "is_control": _is_true(state.get("is_control", "false")),
        "content": state_to_content(kind, state.get("content") or {}),
    }


def content_from_json(text: str) -> tuple[dict | None, str | None]:
    """The advanced editor's JSON: the content, or why it is not a JSON object."""
    try:
        content = json.loads(text)
    except ValueError as err:
        return None, f"Not valid JSON: {err}."
    if not isinstance(content, dict):
        return None, "The content must be a JSON object."
    return content, None


CAMPAIGN_SCALARS = {
    "frequency": (
        "max_impressions",
        "days_after_close",
        "sampling_percent",
        "repeat_after_days",
        "max_responses",
    ),
    "ab": (
        "metric",
        "method",
        "alpha",
        "holdout_percent",
        "min_visitors_per_variant",
        "min_running_days",
        "min_lift",
        "max_duration_days",
        "max_visitors_per_variant",
        "webhook_url",
        "adjustment",
    ),
    "targeting": (
        "visitor",
        "orders_min",
        "orders_max",
        "cart_value_min",
        "cart_value_max",
        "cart_items_min",
        "cart_items_max",
    ),
}
CAMPAIGN_BOOLEANS = {"frequency": ("stop_after_complete",), "ab": ("auto_promote",)}


def with_phase_choice(payload: dict, state: dict) -> dict:
    """The payload with the form's ``phase.assignments`` choice, when one was made (the form of
    a test in progress asks it; the catalog refuses a phase-starting change without it)."""
    chosen = (state.get("phase") or {}).get("assignments")
    return {**payload, "phase": {"assignments": chosen}} if chosen else payload


def template_choice(form: MultiDict) -> dict:
    """The gallery form's choice as the API's ``from-template`` body (a chosen pool as a number)."""
    choice = {"template": form.get("template", "")}
    if form.get("pool_id"):
        choice["pool_id"] = _int_or_text(form["pool_id"])
    return choice


def campaign_to_state(campaign=None, kind: str = "survey") -> dict:
    """A campaign's settings as the form shows them (defaults for a new one)."""
    if campaign is None:
        return {
            "name": "",
            "kind": kind,
            "priority": "0",
            "trigger": {"type": "delay", "seconds": "3", "percent": "", "count": ""},
            "targeting": {"visitor": "any", "url_include": "", "url_exclude": ""},
            "frequency": {
                "stop_after_complete": "true",
                "sampling_percent": "100",
                "teaser": teaser_to_state(None),
            },
            "ab": {"method": "sequential", "alpha": "0.05", "auto_promote": "true"},
        }
    targeting = campaign.targeting or {}
    state = {
        "name": campaign.name,
        "kind": campaign.kind,
        "priority": _text(campaign.priority),
        "trigger": {k: _text(v) for k, v in (campaign.trigger or {}).items()},
        "targeting": {
            **{k: _text(targeting.get(k)) for k in CAMPAIGN_SCALARS["targeting"]},
            "url_include": "\n".join(targeting.get("url_include") or []),
            "url_exclude": "\n".join(targeting.get("url_exclude") or []),
            "devices": list(targeting.get("devices") or []),
            "stages_in": list(targeting.get("stages_in") or []),
            "stages_not_in": list(targeting.get("stages_not_in") or []),
        },
    }
    for group in ("frequency", "ab"):
        stored = getattr(campaign, group) or {}
        state[group] = {k: _text(v) for k, v in stored.items() if k != "teaser"}
    state["frequency"]["teaser"] = teaser_to_state((campaign.frequency or {}).get("teaser"))
    state["frequency"]["answer_quotas"] = "\n".join(
        f"{q['step_id']} {q['option_id']} {q['max']}"
        for q in (campaign.frequency or {}).get("answer_quotas") or []
    )
    state["ab"]["guardrails"] = guardrails_to_lines((campaign.ab or {}).get("guardrails"))
    return state


#: The guardrails field's word for "no guardrail metrics at all" (empty: the defaults).
NO_GUARDRAILS = "none"


def guardrails_to_lines(guardrails: list | None) -> str:
    """``ab.guardrails`` as the form shows them: ``<metric> <max drop>`` a line, ``none`` for an
    explicit empty list, nothing when the campaign leaves them to the defaults."""
    if guardrails is None:
        return ""
    if not guardrails:
        return NO_GUARDRAILS
    return "\n".join(f"{g['metric']} {float(g.get('max_drop') or 0):g}" for g in guardrails)


def lines_to_guardrails(text: str) -> list[dict] | None:
    """The form's guardrail lines as ``ab.guardrails`` (None: leave them to the defaults). A line
    holds a metric and optionally the relative drop allowed; the schema names anything wrong."""
    lines = [line.split() for line in str(text or "").splitlines() if line.strip()]
    if not lines:
        return None
    if [words for words in lines if words] == [[NO_GUARDRAILS]]:
        return []
    return [dict(zip(("metric", "max_drop"), words, strict=False)) for words in lines]


def lines_to_answer_quotas(text: str) -> list[dict]:
    """The form's answer quotas, one a line: ``<question id> <option id> <how many>``. A line
    with fewer words leaves the missing keys out, so the schema names what is missing."""
    quotas = []
    for line in str(text or "").splitlines():
        words = line.split()
        if words:
            quotas.append(dict(zip(("step_id", "option_id", "max"), words, strict=False)))
    return quotas


def teaser_to_state(teaser: dict | None) -> dict:
    """``frequency.teaser`` as the form shows it: texts per locale as their JSON object."""
    if not teaser:
        return {"text": "", "side": "right", "days": ""}
    text = teaser.get("text")
    return {
        "text": json.dumps(text, ensure_ascii=False) if isinstance(text, dict) else _text(text),
        "side": teaser.get("side") or "right",
        "days": _text(teaser.get("days")),
    }


def state_to_teaser(state: dict) -> dict | None:
    """The form's teaser fields as ``frequency.teaser``; None (no teaser) without a text.

    A text that is a JSON object is the texts per locale; days must be a whole number (the
    schema names anything else), empty for this page view only.
    """
    text = str(state.get("text") or "").strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            text = json.loads(text)
        except ValueError:
            pass  # shown as it was typed; the schema refuses it by name
    days = str(state.get("days") or "").strip()
    return {
        "text": text,
        "side": str(state.get("side") or "right"),
        "days": int(days) if days.isdigit() else (days or None),
    }


def state_to_campaign(state: dict, with_kind: bool, existing_targeting: dict | None = None) -> dict:
    """The campaign payload of the settings form (``kind`` only when creating)."""
    payload: dict = {"name": state.get("name", "")}
    if with_kind:
        payload["kind"] = state.get("kind", "")
    if _present(state.get("priority")):
        payload["priority"] = str(state["priority"]).strip()
    trigger = state.get("trigger") or {}
    trigger_type = str(trigger.get("type") or "delay")
    payload["trigger"] = {"type": trigger_type}
    parameter = TRIGGER_PARAMETERS.get(trigger_type)
    if parameter and _present(trigger.get(parameter)):
        payload["trigger"][parameter] = str(trigger[parameter]).strip()
    targeting_state = state.get("targeting") or {}
    targeting = {
        # Rules the form does not edit (attribute rules, set through the API) are kept.
        k: v
        for k, v in (existing_targeting or {}).items()
        if k == "attributes"
    }
    for name in LINE_LISTS:
        field = name.split(".", 1)[1]
        lines = str(targeting_state.get(field, "")).splitlines()
        targeting[field] = [line.strip() for line in lines if line.strip()]
    for name in MULTI_VALUE:
        field = name.split(".", 1)[1]
        values = targeting_state.get(field) or []
        if values:
            targeting[field] = list(values)
    payload["targeting"] = targeting
    for group, names in CAMPAIGN_SCALARS.items():
        source = state.get(group) or {}
        target = payload.setdefault(group, {})
        for name in names:
            if _present(source.get(name)):
                target[name] = str(source[name]).strip()
    for group, names in CAMPAIGN_BOOLEANS.items():
        source = state.get(group) or {}
        for name in names:
            payload[group][name] = _is_true(source.get(name, "false"))
    teaser = state_to_teaser((state.get("frequency") or {}).get("teaser") or {})
    if teaser is not None:
        payload["frequency"]["teaser"] = teaser
    quotas = lines_to_answer_quotas((state.get("frequency") or {}).get("answer_quotas"))
    if quotas:
        payload["frequency"]["answer_quotas"] = quotas
    guardrails = lines_to_guardrails((state.get("ab") or {}).get("guardrails"))
    if guardrails is not None:
        payload["ab"]["guardrails"] = guardrails
    return payload


# -- errors -----------------------------------------------------------------------------------

#: What the forms call a payload field, for the error summary (the owner never sees a dotted path).
FIELD_TITLES = {
    "name": "Name",
    "kind": "Kind",
    "priority": "Priority",
    "allowed_origins": "Storefront origins",
    "weight": "Traffic weight",
    "is_control": "Control",
    "trigger": "Trigger",
    "trigger.type": "Trigger",
    "trigger.seconds": "Trigger seconds",
    "trigger.percent": "Scroll depth",
    "trigger.count": "Page views",
    "targeting": "Who sees it",
    "targeting.url_include": "Only on pages matching",
    "targeting.url_exclude": "Never on pages matching",
    "targeting.devices": "Devices",
    "targeting.visitor": "Visitors",
    "targeting.orders_min": "At least this many orders",
    "targeting.orders_max": "At most this many orders",
    "targeting.cart_value_min": "Cart value at least",
    "targeting.cart_value_max": "Cart value at most",
    "targeting.cart_items_min": "Cart items at least",
    "targeting.cart_items_max": "Cart items at most",
    "targeting.stages_in": "Only visitors in funnel stage",
    "targeting.stages_not_in": "Not visitors in funnel stage",
    "frequency.max_impressions": "Show at most this many times",
    "frequency.days_after_close": "Days after a close",
    "frequency.sampling_percent": "Share of traffic",
    "frequency.stop_after_complete": "Never again after completion",
    "frequency.repeat_after_days": "Show again after",
    "frequency.max_responses": "Complete after responses",
    "frequency.answer_quotas": "Answer quotas",
    "frequency.teaser": "Teaser tab",
    "frequency.teaser.text": "Teaser tab text",
    "frequency.teaser.side": "Teaser tab side",
    "frequency.teaser.days": "Teaser tab days",
    "ab.metric": "Goal",
    "ab.method": "Method",
    "ab.alpha": "Significance level (alpha)",
    "ab.holdout_percent": "Holdout",
    "ab.auto_promote": "Promote automatically",
    "ab.min_visitors_per_variant": "Minimum visitors per variant",
    "ab.min_running_days": "Minimum running days",
    "ab.min_lift": "Minimum lift",
    "ab.max_duration_days": "Stop after this many days",
    "ab.max_visitors_per_variant": "Planned visitors per variant",
    "ab.webhook_url": "Webhook",
    "integrations": "Integrations",
    "integrations.shopify.webhook_secret": "Shopify webhook secret",
    "integrations.shopify.link_cart": "Shopify: link carts",
    "integrations.woocommerce.webhook_secret": "WooCommerce webhook secret",
    "integrations.woocommerce.link_cart": "WooCommerce: link carts",
    "ab.guardrails": "Guardrail metrics",
    "ab.adjustment": "Variance reduction",
    "content": "Content",
    "content.title": "Heading",
    "content.message": "Message",
    "content.button_label": "Button text",
    "content.steps": "Questions",
    "content.slices": "Slices",
    "content.thank_you": "Thank-you step",
    "content.email_capture": "E-mail before the spin",
}
_PART_TITLES = {
    "question": "question",
    "description": "help text",
    "placeholder": "placeholder",
    "dimension": "dimension",
    "required": "required",
    "type": "type",
    "id": "id",
    "label": "label",
    "score": "score",
    "color": "colour",
    "weight": "weight",
    "goto": "go to",
    "when": "condition",
    "min": "from",
    "max": "to",
    "min_label": "label of the lowest",
    "max_label": "label of the highest",
    "code": "code",
    "pool_id": "pool",
    "expires_in_minutes": "code valid for (minutes)",
    "campaign_id": "wheel offered",
    "title": "title",
    "message": "message",
    "consent_text": "consent text",
    "enabled": "ask for an e-mail",
}
_ROW_TITLES = {"steps": "Question", "options": "option", "next": "rule", "slices": "Slice"}


def field_title(key: str) -> str:
    """``content.steps.1.options.0.label`` -> "Question 2 › option 1 › label"."""
    if key in FIELD_TITLES:
        return FIELD_TITLES[key]
    parts = key.split(".")
    if parts[0] != "content" or len(parts) < 2:
        return FIELD_TITLES.get(parts[0], key)
    words: list[str] = []
    rest = parts[1:]
    if rest[0] in ("thank_you", "email_capture"):
        words.append(FIELD_TITLES[f"content.{rest[0]}"])
        rest = rest[1:]
    while rest:
        part = rest.pop(0)
        if part in _ROW_TITLES and rest and rest[0].isdigit():
            words.append(f"{_ROW_TITLES[part]} {int(rest.pop(0)) + 1}")
        elif part in ("scale", "reward", "when"):
            words.append({"scale": "scale", "reward": "reward", "when": "condition"}[part])
        elif not part.isdigit():
            words.append(_PART_TITLES.get(part, part))
    return " › ".join(words) or key


class FieldErrors:
    """The API's ``fields`` ({"content.steps.0.question": [...]}) for the template to place."""

    def __init__(self, fields: dict | None = None, prefix: str = ""):
        self.fields = {
            (f"{prefix}.{k}" if prefix and k != "_schema" else k): list(v)
            for k, v in (fields or {}).items()
        }
        self.shown: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.fields)

    def at(self, name: str, deep: bool = False) -> list[str]:
        """Messages about ``name`` (and, with ``deep``, about anything inside it)."""
        found = []
        for key, messages in self.fields.items():
            if key == name or (deep and key.startswith(name + ".")):
                self.shown.add(key)
                found.extend(messages)
        return found

    def all(self) -> list[tuple[str, str]]:
        return [(key, m) for key, messages in sorted(self.fields.items()) for m in messages]

    def titled(self) -> list[tuple[str, str, str]]:
        """``(field key, what the form calls it, message)``, in the order of the form's fields."""
        return [
            (key, "" if key == "_schema" else field_title(key), message)
            for key, messages in sorted(self.fields.items(), key=lambda kv: _form_order(kv[0]))
            for message in messages
        ]


#: The order of the forms' sections, for the error summary.
_SECTION_ORDER = ("_schema", "name", "allowed_origins", "kind", "priority", "weight", "is_control",
                  "trigger", "targeting", "frequency", "ab", "content")  # fmt: skip


def _form_order(key: str) -> tuple:
    """Sort dotted keys as the form shows them: by section, and ``steps.10`` after ``steps.9``."""
    head, *rest = key.split(".")
    rank = _SECTION_ORDER.index(head) if head in _SECTION_ORDER else len(_SECTION_ORDER)
    return (rank, *((0, int(p), "") if p.isdigit() else (1, 0, p) for p in rest))
