"""Prefilled answers and hidden fields in headless Chromium: an e-mail link's ``?fc_<step>=``
answers the first question and the popup opens on the next; the page URL's query and the
snippet tag's ``data-*`` fill the variant's hidden fields, stored with the response."""

import pytest
from sqlalchemy import select

from tests.widget.helpers import (
    SURVEY,
    answer,
    change_content,
    freeze_clock,
    rewrite_store_pages,
    rows,
    run_clock_until_dialog,
)
from widget_server.models import Response

pytestmark = pytest.mark.browser

HIDDEN = [
    {"name": "utm", "source": "query", "key": "utm_source"},
    {"name": "order", "source": "data", "key": "order-ref"},
]


@pytest.fixture
def with_hidden_fields(live_server):
    change_content(live_server.app, SURVEY, lambda content: content.update(hidden_fields=HIDDEN))


def test_a_prefilled_link_opens_on_the_next_question_and_stores_the_hidden_fields(
    live_server, new_page, with_hidden_fields
):
    page = new_page()
    rewrite_store_pages(page, 'data-order-ref="A-17"')
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/?fc_emotional=4&utm_source=newsletter")
    run_clock_until_dialog(page)
    dialog = page.get_by_role("dialog")
    assert "Question 2 of 3" in dialog.inner_text()
    answer(page, "5")
    answer(page, "Yes, already")
    dialog.get_by_role("status").wait_for()
    [response] = rows(live_server.app, select(Response).where(Response.completed), page=page)
    assert {k: v["value"] for k, v in response.answers.items()} == {
        "emotional": 4,
        "intentional": 5,
        "action": "yes",
    }
    assert response.hidden == {"utm": "newsletter", "order": "A-17"}


@pytest.mark.parametrize("value", ["9", "0", "x", ""])
def test_an_answer_the_question_does_not_offer_is_not_prefilled(live_server, new_page, value):
    page = new_page()
    freeze_clock(page)
    page.goto(f"{live_server.url}/demo/?fc_emotional={value}")
    run_clock_until_dialog(page)
    assert "Question 1 of 3" in page.get_by_role("dialog").inner_text()
