"""Readiness: is the database reachable?"""

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ...extensions import db


def database_ready() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        db.session.rollback()
        return False
