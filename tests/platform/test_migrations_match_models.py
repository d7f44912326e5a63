"""The migrations build exactly the schema the models declare (a column or constraint added to
one and not the other fails here), and the newest migration goes down and up again."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from widget_server.extensions import db


def _differences() -> list:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return [
            change
            for change in compare_metadata(context, db.metadata)
            if not (
                isinstance(change, tuple)
                and change[0] == "remove_table"
                and change[1].name == "alembic_version"
            )
        ]


def test_the_migrated_schema_is_the_models_schema(app):
    assert _differences() == []


def test_the_newest_migration_goes_down_and_up_again(app):
    directory = app.extensions["migrate"].directory
    downgrade(directory=directory, revision="-1")
    upgrade(directory=directory)
    assert _differences() == []
