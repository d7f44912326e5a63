"""The stage rule language and the scoring of answers, without a database."""

import pytest

from widget_server.services.campaigns.templates import loyalty_questionnaire
from widget_server.services.funnel.rules import DEFAULT_STAGES, Facts, holds, stage_for
from widget_server.services.funnel.scoring import scoring_of, visitor_scores


@pytest.mark.parametrize(
    ("facts", "stage"),
    [
        (Facts(), "new_visitor"),
        (Facts(order_count=1), "customer"),
        (Facts(order_count=3), "repeat_customer"),
        (Facts(scores={"emotional": 4.0}), "emotional"),
        (Facts(order_count=2, scores={"emotional": 5.0, "intentional": 3.0}), "emotional"),
        (Facts(scores={"emotional": 4.0, "intentional": 4.0}), "intentional"),
        (Facts(scores={"emotional": 5.0, "intentional": 5.0, "action": 5.0}), "advocate"),
        # An advocate who does not like the shop is no advocate: the ladder needs every rung.
        (Facts(order_count=1, scores={"emotional": 2.0, "action": 5.0}), "customer"),
    ],
)
def test_default_funnel_gives_the_last_stage_whose_rule_holds(facts, stage):
    assert stage_for(DEFAULT_STAGES, facts) == stage


def test_missing_score_makes_comparison_false_and_not_true():
    assert not holds({"score": "nps", "gte": 0}, Facts())
    assert holds({"not": {"score": "nps", "gte": 9}}, Facts())


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"attribute": "plan", "equals": "gold"}, True),
        ({"attribute": "plan", "in": ["silver", "bronze"]}, False),
        ({"attribute": "age", "gte": 18, "lt": 30}, True),
        ({"attribute": "age", "gte": 30}, False),
        ({"attribute": "coupon", "exists": False}, True),
        ({"attribute": "plan", "exists": True}, True),
        ({"attribute": "plan", "gte": 1}, False),  # a string never compares as a number
        ({"spent": {"gte": 99.5}}, True),
        ({"spent": {"gt": 99.5}}, False),
        ({"any": [{"orders": {"gte": 5}}, {"attribute": "vip", "equals": True}]}, True),
        ({"all": []}, True),
        ({"any": []}, False),
    ],
)
def test_rule_language(rule, expected):
    facts = Facts(
        order_count=1, total_spent=99.5, attributes={"plan": "gold", "age": 21, "vip": True}
    )
    assert holds(rule, facts) is expected


def test_choice_and_scale_answers_score_their_dimensions():
    scoring = {7: scoring_of(loyalty_questionnaire("x"))}
    answers = {
        "emotional": {"value": 4, "at": "2026-01-01T00:00:00"},
        "intentional": {"value": 5, "at": "2026-01-01T00:00:01"},
        "action": {"value": "would", "at": "2026-01-01T00:00:02"},
    }
    assert visitor_scores([(7, answers)], scoring) == {
        "action": 3.0,
        "emotional": 4.0,
        "intentional": 5.0,
    }


def test_several_answers_on_one_dimension_count_as_their_mean():
    content = {
        "steps": [
            {"id": "nps", "type": "nps", "question": "Recommend?"},
            {
                "id": "likes",
                "type": "multi_choice",
                "question": "What do you like?",
                "options": [
                    {"id": "price", "label": "Price", "dimension": "emotional", "score": 2},
                    {"id": "staff", "label": "Staff", "dimension": "emotional", "score": 5},
                    {"id": "other", "label": "Other"},
                ],
            },
            {"id": "mood", "type": "scale", "question": "Mood?", "dimension": "emotional"},
            {"id": "note", "type": "text", "question": "Anything else?"},
        ]
    }
    scoring = {1: scoring_of(content), 2: scoring_of(content)}
    first = {
        "nps": {"value": 10},
        "likes": {"value": ["price", "staff", "other"]},  # one answer: mean 3.5
        "mood": {"value": 5},
        "note": {"value": "=cmd()"},
    }
    second = {"nps": {"value": 6}, "mood": {"value": 1}}
    scores = visitor_scores([(1, first), (2, second)], scoring)
    assert scores == {"emotional": pytest.approx((3.5 + 5 + 1) / 3, abs=1e-4), "nps": 8.0}


def test_unknown_options_and_bool_values_score_nothing():
    scoring = {1: scoring_of(loyalty_questionnaire("x"))}
    answers = {"action": {"value": "maybe"}, "emotional": {"value": True}}
    assert visitor_scores([(1, answers)], scoring) == {}
