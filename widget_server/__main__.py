"""``python -m widget_server`` is the ``funnelcake`` command."""

from .cli import main

main()
