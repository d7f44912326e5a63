"""Standard Webhooks: a signing secret per site, a message id per delivery, a retry schedule.

Every site gets a ``webhook_secret`` (``whsec_`` + base64 of 32 random bytes; existing sites get
one here) and room for the previous one during a rotation. Every delivery gets its
``message_id`` (the ``webhook-id`` header: ``msg_<id>`` for the deliveries already recorded,
random for new ones), ``next_attempt_at`` (the sender reads only pending deliveries that are
due, through a partial index) and ``last_attempt_at``. The site's delivery log reads an index of
(site_id, id) instead of the one of site_id alone.

Pending deliveries recorded before this revision are brought to the new body, so what is sent
from now on is one shape: ``{"type", "timestamp", "data"}`` with the renamed events
(``visitor.stage_changed`` is ``stage.changed``, ``campaign.promote`` and ``campaign.stop`` are
``decision.made`` with the ``action`` in ``data``); Slack messages stay as they are, delivered
and failed ones keep the body they were sent with. A downgrade keeps the bodies as they are.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 10:00:00

"""

import base64
import secrets
from datetime import UTC

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
RENAMED = {
    "visitor.stage_changed": ("stage.changed", None),
    "campaign.promote": ("decision.made", "promote"),
    "campaign.stop": ("decision.made", "stop"),
}

sites = sa.table("sites", sa.column("id", sa.Integer), sa.column("webhook_secret", sa.String))
deliveries = sa.table(
    "webhook_deliveries",
    sa.column("id", sa.Integer),
    sa.column("event", sa.String),
    sa.column("payload", JSON_TYPE),
    sa.column("status", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.column("message_id", sa.String),
)


def upgrade():
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("webhook_secret", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("previous_webhook_secret", sa.String(length=128), nullable=True))
        batch.add_column(
            sa.Column("webhook_secret_rotated_at", sa.DateTime(timezone=True), nullable=True)
        )
    connection = op.get_bind()
    for (site_id,) in connection.execute(sa.select(sites.c.id)).all():
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        connection.execute(
            sites.update().where(sites.c.id == site_id).values(webhook_secret=secret)
        )
    with op.batch_alter_table("sites") as batch:
        batch.alter_column("webhook_secret", existing_type=sa.String(length=128), nullable=False)

    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("message_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True))
    connection.execute(
        deliveries.update().values(
            message_id=sa.literal("msg_") + sa.cast(deliveries.c.id, sa.String)
        )
    )
    pending = connection.execute(
        sa.select(deliveries.c.id, deliveries.c.event, deliveries.c.payload, deliveries.c.created_at)
        .where(deliveries.c.status == "pending")
    ).all()
    for delivery_id, event, payload, created_at in pending:
        event, body = _enveloped(event, payload, created_at)
        connection.execute(
            deliveries.update()
            .where(deliveries.c.id == delivery_id)
            .values(event=event, payload=body, next_attempt_at=created_at)
        )
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.alter_column("message_id", existing_type=sa.String(length=64), nullable=False)
        batch.drop_index("ix_webhook_deliveries_site_id")
        batch.create_index("ix_webhook_deliveries_site", ["site_id", "id"], unique=False)
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["next_attempt_at"], unique=False,
        postgresql_where=PENDING, sqlite_where=PENDING,
    )


def _enveloped(event: str, payload: dict, created_at) -> tuple[str, dict]:
    """A pending delivery's event and body in the new shape (a Slack message stays as it is)."""
    if set(payload) == {"text"}:
        return event, payload
    event, action = RENAMED.get(event, (event, None))
    data = {key: value for key, value in payload.items() if key != "event"}
    if action is not None:
        data["action"] = action
    at = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
    stamp = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return event, {"type": event, "timestamp": stamp, "data": data}


def downgrade():
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_index("ix_webhook_deliveries_site")
        batch.create_index("ix_webhook_deliveries_site_id", ["site_id"], unique=False)
        batch.drop_column("last_attempt_at")
        batch.drop_column("next_attempt_at")
        batch.drop_column("message_id")
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("webhook_secret_rotated_at")
        batch.drop_column("previous_webhook_secret")
        batch.drop_column("webhook_secret")
