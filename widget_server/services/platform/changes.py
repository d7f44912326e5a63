"""The announcement that a site's setup changed, for the caches that hold a copy of it.

An area that changes what others cache (the funnel's stages, which decide's site config and the
funnel figures both hold) sends :data:`site_changed` instead of reaching up into those caches;
each cache subscribes to it where it is defined. Receivers run in the sender's app context.
"""

from blinker import Namespace

_signals = Namespace()

#: Sent with ``site_id`` and ``site_key`` after a site's change is committed.
site_changed = _signals.signal("site-changed")


def announce_site_change(site_id: int, site_key: str) -> None:
    """Tell every cache of this app that the site changed (after the change is committed)."""
    site_changed.send(site_id=site_id, site_key=site_key)
