"""The admin page's generate form: a count written with a Unicode digit ("²", which
``str.isdigit`` accepts and ``int`` refuses) was a 500; now it is the form again, naming count."""

import re

import pytest
from sqlalchemy import func, select

from widget_server.extensions import db
from widget_server.models import CouponCode


def make_pool(admin, site) -> dict:
    response = admin.post(f"/api/v1/admin/sites/{site['id']}/coupon-pools", json={"name": "P"})
    assert response.status_code == 201, response.json
    return response.json


def codes_made() -> int:
    return db.session.scalar(select(func.count()).select_from(CouponCode))


@pytest.mark.parametrize("count", ["²", "٣", "1_000", "1e3", "-5", "99999999999999999999", ""])
def test_the_generate_form_refuses_a_count_that_is_not_ascii_digits(page, admin, make_site, count):
    pool = make_pool(admin, make_site())
    response = page.post(f"/admin/coupons/{pool['id']}/generate", {"count": count})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    # The message sits under this pool's count box.
    shown = re.search(r'name="count"[^>]*></label>\s*<span class="field-error">([^<]+)<', html)
    assert shown, html
    assert shown.group(1) == "Not a valid integer." or "100000" in shown.group(1)
    assert codes_made() == 0


def test_the_generate_form_takes_a_count_with_spaces_around_it(page, admin, make_site):
    pool = make_pool(admin, make_site())
    response = page.post(f"/admin/coupons/{pool['id']}/generate", {"count": " 25 "})
    assert response.status_code == 302
    assert codes_made() == 25
