"""Reading JSON text: orjson where it reads exactly what the standard library reads, the
standard library everywhere else.

orjson parses several times faster, and the busiest paths read JSON (the public API's bodies,
the events' data and answers the applier folds). Where it differs it must not be used: it
refuses what the standard library reads (NaN in a value stored before NaN was refused, a
byte-order mark, a lone surrogate), and it reads an integer past 64 bits as an approximate
float where the standard library keeps it exact. So a text holding a run of 19 digits (every
integer past 64 bits has 20 or more; a long number or a long digit string in a text sends the
text the slow way, which reads it right) or refused by orjson is read by the standard library.
"""

import json
import re

import orjson

#: The shortest run of digits that may be an integer orjson cannot hold (2**63 has 19 digits).
_LONG_NUMBER = re.compile(r"\d{19}")
_LONG_NUMBER_BYTES = re.compile(rb"\d{19}")


def loads(text: str | bytes, parse_constant=None):
    """``text`` read as ``json.loads(text, parse_constant=parse_constant)`` reads it (its
    ``parse_constant`` sees NaN and Infinity, which orjson never reads)."""
    long_number = _LONG_NUMBER if isinstance(text, str) else _LONG_NUMBER_BYTES
    if long_number.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text, parse_constant=parse_constant)
