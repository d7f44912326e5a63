"""The funnel page and the campaign form in headless Chromium at 1280 and 390 px.

Regressions of issue 12 part 10: a bar's caption was cut off at the chart's edge ("4 entere"),
the trigger dropdown showed its choice cut off, and most visitors were in no bar at all.
Screenshots land in ``test-artifacts/admin/`` like the other browser tests'.
"""

import re
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from tests.admin.helpers import WIDTHS, log_in_page, shoot
from widget_server.extensions import db
from widget_server.models import Site, StageChange, Visitor
from widget_server.models.types import utcnow

pytestmark = pytest.mark.browser

#: Every text of the visible chart: its right end and the chart's width, in viewBox units.
TEXT_EXTENTS = """() => [...document.querySelectorAll('svg.chart')]
  .filter(svg => svg.getBoundingClientRect().width > 0)
  .flatMap(svg => [...svg.querySelectorAll('text')].map(t => {
    const box = t.getBBox();
    return [t.textContent, box.x, box.x + box.width, svg.viewBox.baseVal.width];
  }))"""

#: Per select of the settings form: its widest choice's text width and the room the select
#: leaves for it (its inner width less the padding and the arrow), in CSS pixels.
SELECT_ROOM = """() => {
  const ctx = document.createElement('canvas').getContext('2d');
  return [...document.querySelectorAll('form.settings select')].map(sel => {
    const style = getComputedStyle(sel);
    ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const widest = Math.max(...[...sel.options].map(o => ctx.measureText(o.text).width));
    const room = sel.clientWidth - parseFloat(style.paddingLeft)
      - parseFloat(style.paddingRight) - 20;
    return [sel.name, widest, room];
  });
}"""


def seed_funnel(app) -> int:
    """1,200 anonymous visitors; 50 who became new visitors, then customers; 4 loyal ones; 3 in
    a retired stage with a long key. The widest bar (New visitor) gets the longest caption."""
    with app.app_context():
        site_id = db.session.scalar(select(Site.id).order_by(Site.id))
        groups = [
            ("anon", 1200, None, 0),
            ("buyer", 50, "customer", 1),
            ("loyal", 4, "intentional", 0),
            ("old", 3, "top_tier_loyalists_of_2025", 0),
        ]
        for prefix, count, stage, orders in groups:
            db.session.execute(
                insert(Visitor),
                [
                    {
                        "site_id": site_id,
                        "visitor_key": f"{prefix}-{index:06d}",
                        "stage": stage,
                        "order_count": orders,
                        "total_spent": 10 * orders,
                    }
                    for index in range(count)
                ],
            )
        staged = db.session.execute(
            select(Visitor.id, Visitor.stage).where(Visitor.stage.in_(["customer", "intentional"]))
        ).all()
        path = {"customer": [None, "new_visitor", "customer"], "intentional": [None, "intentional"]}
        db.session.execute(
            insert(StageChange),
            [
                {
                    "site_id": site_id,
                    "visitor_id": visitor_id,
                    "from_stage": steps[k],
                    "to_stage": steps[k + 1],
                    "cause": "order",
                    "changed_at": utcnow() - timedelta(days=5 - k),
                }
                for visitor_id, stage in staged
                for steps in [path[stage]]
                for k in range(len(steps) - 1)
            ],
        )
        db.session.commit()
        return site_id


def test_funnel_chart_counts_everyone_and_keeps_every_caption_inside(new_page, owner_site):
    site_id = seed_funnel(owner_site.app)
    page = new_page(viewport=WIDTHS["desktop"])
    log_in_page(page, owner_site.url)
    page.goto(f"{owner_site.url}/admin/sites/{site_id}/funnel")
    shoot(page, "20-funnel-entry-stage")

    for size in WIDTHS.values():
        page.set_viewport_size(size)
        page.wait_for_timeout(150)
        texts = page.evaluate(TEXT_EXTENTS)
        assert texts, "no chart text"
        for text, left, right, width in texts:
            assert left >= 0 and right <= width, f"{text!r} cut off at {size['width']} px"
        captions = " ".join(text for text, *_ in texts)
        assert "1,200" in captions  # the anonymous visitors' bar, in New visitor
        assert "50 entered, 100% moved on to a later stage" in captions  # the widest bar's
        shares = [float(share) for share in re.findall(r"([\d.]+)% of visitors", captions)]
        assert len(shares) == 7  # six stages and the retired one, each once
        assert round(sum(shares), 1) == 100.0


def test_campaign_form_dropdowns_show_their_longest_choice(new_page, owner_site):
    page = new_page(viewport=WIDTHS["desktop"])
    log_in_page(page, owner_site.url)
    page.goto(f"{owner_site.url}/admin/sites/1/campaigns/new")
    shoot(page, "21-campaign-form-dropdowns")

    for name, widest, room in page.evaluate(SELECT_ROOM):
        assert widest <= room, f"{name} cut off at 1280 px ({widest:.0f} > {room:.0f})"
    page.set_viewport_size(WIDTHS["phone"])
    page.wait_for_timeout(150)
    trigger = {name: (widest, room) for name, widest, room in page.evaluate(SELECT_ROOM)}
    widest, room = trigger["trigger.type"]
    assert widest <= room, f"trigger cut off at 390 px ({widest:.0f} > {room:.0f})"
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTHS["phone"]["width"]
