"""Rows by primary key for the APIs: the row, or the API's 404 naming what is missing."""

from ...errors import NotFound
from ...extensions import db


def get_or_404(model, row_id: int, what: str):
    """The ``model`` row of this id. :raise NotFound: saying "No <what> <id>."."""
    row = db.session.get(model, row_id)
    if row is None:
        raise NotFound(f"No {what} {row_id}.")
    return row
