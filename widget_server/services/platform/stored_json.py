"""JSON to and from the database: the values it hands back (events' data, answers, attributes,
scores) and the rows sent to it as one JSON text (``platform.upsert``).

The applier reads several JSON values per event it folds, and the standard library's parser was
a sixth of its Python time; orjson reads and writes the same text several times faster. What
orjson refuses or would read differently is left to the standard library, so nothing stored
becomes unreadable or reads back changed and nothing writable is refused: ``NaN`` in a value
SQLite may hold from before NaN was refused, an integer past 64 bits in a visitor's attributes.
"""

import json

import orjson

#: A stored value as the standard library reads it (orjson where it reads the same).
from ...json_text import loads  # noqa: F401 (this module's reader)


def dumps(value, default) -> str:
    """``value`` as compact JSON; ``default`` converts what JSON has no form for. orjson writes
    times as ``isoformat()`` does."""
    try:
        return orjson.dumps(value, default=default, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, default=default, separators=(",", ":"))
