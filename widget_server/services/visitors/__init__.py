"""Visitors: their records and the last-seen touch (``records``), and ``identify``, which
attaches a customer id, e-mail and attributes and merges a visitor into the one already known.

May import: platform, funnel (identify restages the merged visitor).
"""
