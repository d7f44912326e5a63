"""Decision reasons count in the singular for exactly one ("1 visitor", "1 day")."""

from ab.policy import decide


def test_one_visitor_in_the_smallest_variant_is_singular(make_arms):
    decision = decide(make_arms([(1, 0), (1, 0)]), running_days=10, min_running_days=0)
    assert "(1 visitor in the smallest)" in decision.reason


def test_two_visitors_in_the_smallest_variant_are_plural(make_arms):
    decision = decide(make_arms([(2, 0), (3, 0)]), running_days=10, min_running_days=0)
    assert "(2 visitors in the smallest)" in decision.reason


def test_minimum_of_one_running_day_is_singular(make_arms):
    arms = make_arms([(8000, 800), (8000, 1000)])
    decision = decide(arms, running_days=0.5, min_running_days=1, min_visitors_per_variant=100)
    assert "the test must run 1 day (0.5 so far)" in decision.reason
