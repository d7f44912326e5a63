"""Where decide finds a returning visitor's :class:`~.state.VisitorState` without the database.

Two stores, one interface (``get``, ``put``, ``forget``):

- :class:`MemoryStateStore`, the default: each worker process keeps the states it loaded, up to
  ``VISITOR_STATE_MAX`` visitors, each for ``VISITOR_STATE_TTL_S``.
- :class:`RedisStateStore`, when ``FUNNELCAKE_REDIS_URL`` is set: one store shared by every
  worker and host.

A state is *forgotten* whenever something changes what decide would read: the visitor's events
(impressions, closes, completions, answers that move their stage), identify, an order, the
applier's fold. The next decide loads it again from the database (:func:`.state.load_state`).

Every ``get`` hands out a token, and ``put`` stores a state only if the visitor was not forgotten
since that token: a decide that read the database just before an event committed cannot leave a
state without that event in the store. The token is a sequence number of forgets (in Redis one
``INCR``-ed counter shared by all); a forget marks the visitor's key and id with a new number,
and a state stored under an older token is a miss. A state is forgotten by the key it was
stored under (the events of that browser) or by the visitor's id (any change to the visitor row
or an assignment, which also reaches the keys merged into it).

Changes made through the ORM (identify, orders, restaging, admin edits) are forgotten by a
session hook when their transaction commits; the bulk writes (applier, restaging in bulk) note
theirs (:func:`..platform.changes.note_changed_visitors`). Redis unreachable, decide reads the
database every time and keeps nothing (as the rate limits then count per worker).

How current a worker's memory stays with several worker processes: its own requests forget at
once; other processes' events reach it through :class:`ChangedVisitorsFeed` (one indexed read of
the newest events per worker every ``CONFIG_CHECK_S``); other changes (identify, orders and the
stage the applier moves, made in another process) only through the TTL. With Redis every change
reaches every worker at once. The docs (``docs/decide.md``) say which to run where.
"""

import json
import logging
import threading
import time
from collections import OrderedDict
from datetime import datetime

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import bindparam, select

from ...extensions import db
from ...models import Event
from ..platform.changes import visitors_changed
from .state import AssignmentState, VisitorState

_log = logging.getLogger(__name__)

#: Where each app keeps its store, in ``app.extensions``.
EXTENSION_KEY = "funnelcake.visitor_states"
#: A forget is remembered this long: longer than any request loading a state lives.
_FORGET_MEMORY_S = 120.0


class MemoryStateStore:
    """One worker's visitor states, least recently used dropped first."""

    #: This store sees only its own process's changes: other processes' events come through
    #: :class:`ChangedVisitorsFeed`.
    shared = False

    def __init__(self, capacity: int, ttl_s: float):
        self._capacity = capacity
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._states: OrderedDict[tuple[int, str], tuple[float, int, VisitorState]] = OrderedDict()
        #: ``("k", site_id, key)`` or ``("v", visitor_id)`` -> (monotonic time, sequence).
        self._forgotten: OrderedDict[tuple, tuple[float, int]] = OrderedDict()
        self._sequence = 0

    def get(self, site_id: int, visitor_key: str) -> tuple[VisitorState | None, int]:
        key = (site_id, visitor_key)
        now = time.monotonic()
        with self._lock:
            token = self._sequence
            found = self._states.get(key)
            if found is None:
                return None, token
            expires_at, stored_token, state = found
            if expires_at <= now or self._forgotten_since(
                stored_token, ("k", site_id, visitor_key), ("v", state.visitor_id)
            ):
                del self._states[key]
                return None, token
            self._states.move_to_end(key)
            return state, token

    def put(self, site_id: int, visitor_key: str, state: VisitorState, token: int) -> None:
        with self._lock:
            if self._forgotten_since(token, ("k", site_id, visitor_key), ("v", state.visitor_id)):
                return  # changed while the caller read it: its copy may miss the change
            key = (site_id, visitor_key)
            self._states[key] = (time.monotonic() + self._ttl_s, token, state)
            self._states.move_to_end(key)
            while len(self._states) > self._capacity:
                self._states.popitem(last=False)

    def forget(self, site_id: int | None = None, visitor_keys=(), visitor_ids=()) -> None:
        """Forget the states stored under these keys of ``site_id`` and those of these
        visitors (whatever key they were stored under: a merged visitor's keys too)."""
        markers = [("k", site_id, k) for k in visitor_keys] + [("v", v) for v in visitor_ids]
        if not markers:
            return
        now = time.monotonic()
        with self._lock:
            self._sequence += 1
            for marker in markers:
                self._forgotten[marker] = (now, self._sequence)
                self._forgotten.move_to_end(marker)
            horizon = now - max(self._ttl_s, _FORGET_MEMORY_S)
            while self._forgotten and next(iter(self._forgotten.values()))[0] < horizon:
                self._forgotten.popitem(last=False)

    def _forgotten_since(self, token: int, *markers) -> bool:
        for marker in markers:
            found = self._forgotten.get(marker)
            if found is not None and found[1] > token:
                return True
        return False

    def clear(self) -> None:
        with self._lock:
            self._sequence += 1
            self._states.clear()


#: One round trip for a hit: the state, and the generations of its key and of its visitor.
#: A state is stored as ``"<visitor id>|<token>|<json>"``; it is current when neither was
#: forgotten (raised to a newer ``fc:seq``) after its token.
_GET_STATE = """
local state = redis.call('GET', KEYS[1])
local sequence = redis.call('GET', KEYS[3]) or '0'
if not state then return {false, sequence} end
local visitor_id, token = string.match(state, '^(%d+)|(%d+)|')
local by_key = tonumber(redis.call('GET', KEYS[2]) or '0')
local by_visitor = tonumber(redis.call('GET', ARGV[1] .. visitor_id) or '0')
if by_key > tonumber(token) or by_visitor > tonumber(token) then return {false, sequence} end
return {state, sequence}
"""
_FORGET = """
local sequence = redis.call('INCR', KEYS[1])
for i = 2, #KEYS do redis.call('SET', KEYS[i], sequence, 'EX', ARGV[1]) end
return sequence
"""


class RedisStateStore:
    """Visitor states in Redis, shared by every worker and host."""

    shared = True
    _SEQUENCE = "fc:seq"

    def __init__(self, client, ttl_s: float):
        self._redis = client
        self._ttl_s = max(1, int(ttl_s))
        self._get = client.register_script(_GET_STATE)
        self._forget = client.register_script(_FORGET)

    def get(self, site_id: int, visitor_key: str) -> tuple[VisitorState | None, int | None]:
        try:
            stored, sequence = self._get(
                keys=[
                    f"fc:vs:{site_id}:{visitor_key}",
                    f"fc:fk:{site_id}:{visitor_key}",
                    self._SEQUENCE,
                ],
                args=["fc:fv:"],
            )
        except RedisError as err:
            _warn_unreachable(err)
            return None, None
        token = int(sequence)
        if not stored:
            return None, token
        return decode_state(stored.split(b"|", 2)[2]), token

    def put(self, site_id: int, visitor_key: str, state: VisitorState, token) -> None:
        if token is None:
            return  # Redis was unreachable for the get: keep nothing
        # A put that lost a race with a forget stores a state the next get finds stale.
        try:
            self._redis.set(
                f"fc:vs:{site_id}:{visitor_key}",
                f"{state.visitor_id or 0}|{token}|{encode_state(state)}",
                ex=self._ttl_s,
            )
        except RedisError as err:
            _warn_unreachable(err)

    def forget(self, site_id: int | None = None, visitor_keys=(), visitor_ids=()) -> None:
        keys = [f"fc:fk:{site_id}:{k}" for k in visitor_keys] + [f"fc:fv:{v}" for v in visitor_ids]
        if not keys:
            return
        try:
            # A forget outlives every state stored before it.
            self._forget(keys=[self._SEQUENCE, *keys], args=[self._ttl_s + 60])
        except RedisError as err:
            # States kept before the outage expire within the TTL.
            _warn_unreachable(err)

    def clear(self) -> None:
        """Nothing to clear per worker: Redis states are checked against their forgets."""


_warned_at = [0.0]


def _warn_unreachable(err: Exception) -> None:
    """Log an outage once a minute, not once a request."""
    now = time.monotonic()
    if now - _warned_at[0] >= 60:
        _warned_at[0] = now
        _log.warning("visitor states: Redis unreachable (%s); decide reads the database", err)


def encode_state(state: VisitorState) -> str:
    """The state as compact JSON."""
    return json.dumps(
        [
            state.visitor_id,
            state.visitor_key,
            _iso(state.first_seen_at),
            _iso(state.last_seen_at),
            state.order_count,
            state.stage,
            state.has_facts,
            state.attributes,
            _iso(state.last_popup_end_at),
            [
                [
                    a.campaign_id,
                    a.variant_id,
                    a.holdout,
                    a.sampled_out,
                    a.reward_only,
                    a.impressions,
                    _iso(a.last_closed_at),
                    _iso(a.completed_at),
                    a.id,
                    a.phase,
                ]
                for a in state.assignments.values()
            ],
        ],
        separators=(",", ":"),
    )


def decode_state(text: str | bytes) -> VisitorState:
    (visitor_id, key, first, last, orders, stage, facts, attributes, ended, rows) = json.loads(text)
    assignments = {}
    for row in rows:
        row[6], row[7] = _time(row[6]), _time(row[7])
        assignments[row[0]] = AssignmentState(*row)
    return VisitorState(
        visitor_id=visitor_id,
        visitor_key=key,
        first_seen_at=_time(first),
        last_seen_at=_time(last),
        order_count=orders,
        stage=stage,
        has_facts=facts,
        attributes=attributes,
        last_popup_end_at=_time(ended),
        assignments=assignments,
    )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def app_store():
    """The current app's store, made on first use from its settings."""
    found = current_app.extensions.get(EXTENSION_KEY)
    if found is None:
        config = current_app.config
        if config["REDIS_URL"]:
            import redis

            made = RedisStateStore(
                # Short waits: an unreachable Redis costs decide a moment, not the request.
                redis.Redis.from_url(
                    config["REDIS_URL"], socket_connect_timeout=0.5, socket_timeout=0.5
                ),
                config["VISITOR_STATE_TTL_S"],
            )
        else:
            made = MemoryStateStore(config["VISITOR_STATE_MAX"], config["VISITOR_STATE_TTL_S"])
        found = current_app.extensions.setdefault(EXTENSION_KEY, made)
    return found


def forget_visitors(site_id: int | None = None, visitor_keys=(), visitor_ids=()) -> None:
    """Drop these visitors' states from the current app's store: a change decide must see."""
    if current_app.config["VISITOR_STATE_TTL_S"] > 0:
        app_store().forget(site_id, visitor_keys, visitor_ids)


class ChangedVisitorsFeed:
    """Brings other processes' events to a worker's memory store: one request per worker every
    ``CONFIG_CHECK_S`` reads the visitors of the events stored since the last read (by id, on
    the primary key) and forgets their states.

    Ids are read from the previous read's start, so each is read twice: an event whose
    transaction took its id before an event of a higher id committed is still seen if it
    committed within one interval.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self._read_at = 0.0
        self._after: int | None = None
        self._previous_after: int | None = None

    def due(self, now: float, every_s: float) -> bool:
        with self._lock:
            if now - self._checked_at < every_s:
                return False
            self._checked_at = now
            return True

    def read(self, store, ttl_s: float) -> None:
        """Forget the states of the visitors with events since the last read. After a pause
        longer than the TTL (no decide in this worker, so every state it kept has expired) or
        more events than one read takes, it starts again from the newest event, all states
        dropped: never a read of everything stored meanwhile."""
        connection = db.session.connection()
        now = time.monotonic()
        paused = now - self._read_at > ttl_s
        self._read_at = now
        rows = []
        if self._after is not None and not paused:
            rows = connection.execute(
                _EVENTS_SINCE, {"after": self._previous_after, "limit": _FEED_MAX_ROWS + 1}
            ).all()
        if self._after is None or paused or len(rows) > _FEED_MAX_ROWS:
            store.clear()
            self._after = self._previous_after = connection.execute(_NEWEST_EVENT).scalar() or 0
            return
        self._previous_after = self._after
        if rows:
            self._after = max(self._after, rows[-1].id)
        by_site: dict[int, set[str]] = {}
        for row in rows:
            by_site.setdefault(row.site_id, set()).add(row.visitor_key)
        for site_id, keys in by_site.items():
            store.forget(site_id, visitor_keys=keys)


#: The most events one read of the feed takes (two intervals' worth under heavy load).
_FEED_MAX_ROWS = 20_000
_NEWEST_EVENT = select(Event.id).order_by(Event.id.desc()).limit(1)
_EVENTS_SINCE = (
    select(Event.id, Event.site_id, Event.visitor_key)
    .where(Event.id > bindparam("after"))
    .order_by(Event.id)
    .limit(bindparam("limit"))
)


@visitors_changed.connect
def _forget_changed_visitors(sender, visitor_ids, **_) -> None:
    forget_visitors(visitor_ids=visitor_ids)
