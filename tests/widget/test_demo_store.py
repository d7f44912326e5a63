"""The demo store in headless Chromium: the survey popup appears and its answers are stored."""

import pytest
from sqlalchemy import select

from tests.widget.helpers import answer, freeze_clock, rows, run_clock_until_dialog
from widget_server.models import Response

pytestmark = pytest.mark.browser


def stored_answers(app, page):
    [response] = rows(app, select(Response).where(Response.completed.is_(True)), page=page)
    return {k: v["value"] for k, v in response.answers.items()}


@pytest.fixture
def survey(live_server, new_page):
    """The demo store's home page with the loyalty survey shown (its 2 s delay run on a clock)."""
    page = new_page()
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/")
    page.clock.run_for(1_500)
    assert page.get_by_role("dialog").count() == 0  # not before its delay
    run_clock_until_dialog(page)
    return page


def test_loyalty_survey_is_answered_step_by_step_and_stored(live_server, survey):
    dialog = survey.get_by_role("dialog")
    assert "1 of 3" in dialog.inner_text()
    answer(survey, "4")
    assert "2 of 3" in dialog.inner_text()
    answer(survey, "5")
    answer(survey, "Yes, already")
    assert "Thank you" in dialog.inner_text()
    expected = {"emotional": 4, "intentional": 5, "action": "yes"}
    assert stored_answers(live_server.app, survey) == expected


def test_low_emotional_score_skips_the_intentional_step(live_server, survey):
    answer(survey, "1")
    assert "Have you recommended us" in survey.get_by_role("dialog").inner_text()
    answer(survey, "No")
    assert stored_answers(live_server.app, survey) == {"emotional": 1, "action": "no"}


def test_back_returns_to_the_previous_step_with_its_answer(live_server, survey):
    answer(survey, "2")
    survey.get_by_role("button", name="Back").click()
    assert survey.get_by_role("radio", name="2", exact=True).is_checked()
    answer(survey, "4")  # changed its mind: now the intentional step follows
    assert "I intend to buy" in survey.get_by_role("dialog").inner_text()
