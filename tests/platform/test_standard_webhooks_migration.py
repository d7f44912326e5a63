"""Migration 0018 on an installation with data: every existing site gets its own webhook secret,
every delivery a message id, and pending deliveries the new body and event names (delivered ones
and Slack messages keep theirs)."""

from datetime import UTC, datetime

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade
from sqlalchemy import select

from widget_server.extensions import db
from widget_server.models import Site, WebhookDelivery
from widget_server.models.types import JSONType

SITES = sa.table(
    "sites",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("site_key", sa.String),
    sa.column("secret", sa.String),
    sa.column("allowed_origins", JSONType),
    sa.column("settings", JSONType),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
DELIVERIES = sa.table(
    "webhook_deliveries",
    sa.column("id", sa.Integer),
    sa.column("site_id", sa.Integer),
    sa.column("url", sa.String),
    sa.column("event", sa.String),
    sa.column("payload", JSONType),
    sa.column("attempts", sa.Integer),
    sa.column("status", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
AT = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)


def test_existing_sites_and_deliveries_are_brought_to_standard_webhooks(app):
    directory = app.extensions["migrate"].directory
    downgrade(directory=directory, revision="0016")
    try:
        site = {"created_at": AT, "updated_at": AT, "allowed_origins": [], "settings": {}}
        db.session.execute(
            SITES.insert(),
            [
                {**site, "id": 1, "name": "A", "site_key": "pk_a", "secret": "sk_a"},
                {**site, "id": 2, "name": "B", "site_key": "pk_b", "secret": "sk_b"},
            ],
        )
        delivery = {"site_id": 1, "url": "https://h.example/", "attempts": 0, "created_at": AT}
        db.session.execute(
            DELIVERIES.insert(),
            [
                {
                    **delivery,
                    "id": 1,
                    "event": "visitor.stage_changed",
                    "status": "pending",
                    "payload": {"event": "visitor.stage_changed", "to_stage": "customer"},
                },
                {
                    **delivery,
                    "id": 2,
                    "event": "campaign.promote",
                    "status": "pending",
                    "payload": {"event": "campaign.promote", "campaign_id": 7},
                },
                {
                    **delivery,
                    "id": 3,
                    "event": "response.completed",
                    "status": "pending",
                    "payload": {"text": "*Survey*: a response completed"},
                },  # fmt: skip
                {
                    **delivery,
                    "id": 4,
                    "event": "campaign.stop",
                    "status": "delivered",
                    "payload": {"event": "campaign.stop"},
                },  # fmt: skip
            ],
        )
        db.session.commit()
    finally:
        upgrade(directory=directory)

    db.session.expire_all()
    secrets = db.session.scalars(select(Site.webhook_secret).order_by(Site.id)).all()
    assert len(set(secrets)) == 2 and all(s.startswith("whsec_") for s in secrets)
    rows = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [r.message_id for r in rows] == ["msg_1", "msg_2", "msg_3", "msg_4"]
    assert [(r.event, r.payload) for r in rows] == [
        (
            "stage.changed",
            {
                "type": "stage.changed",
                "timestamp": "2026-12-05T09:30:00Z",
                "data": {"to_stage": "customer"},
            },
        ),
        (
            "decision.made",
            {
                "type": "decision.made",
                "timestamp": "2026-12-05T09:30:00Z",
                "data": {"campaign_id": 7, "action": "promote"},
            },
        ),
        ("response.completed", {"text": "*Survey*: a response completed"}),
        ("campaign.stop", {"event": "campaign.stop"}),
    ]
    assert [r.next_attempt_at for r in rows] == [AT, AT, AT, None]
    if db.engine.dialect.name == "sqlite":
        # The sites table was rebuilt with foreign keys off: nothing cascaded, nothing dangles.
        assert db.session.execute(sa.text("PRAGMA foreign_key_check")).all() == []
        assert db.session.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
