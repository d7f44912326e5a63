"""The work the views ask for, grouped by product area; business rules live here and in ``ab/``.

Areas, lowest first; each may import the areas before it (and ``models``, ``vocabulary``,
``errors``, ``extensions``, ``outbound``, ``ab``), never one after it, and never ``schemas``,
``api`` or ``admin``: views load and validate shapes, services act on what they are given.

=============  ==================================================================================
``platform``   what every area leans on: upserts, rows, admin users and API tokens, signatures,
               outgoing webhooks, change announcements, spreadsheet-safe cells, health
``funnel``     the rule language, dimension scores, loyalty stages, funnel figures and exports
``visitors``   visitor records and the last-seen touch; identify, which merges visitors
``campaigns``  sites, campaigns and variants (catalog), the cached site config, targeting, decide
``promotion``  per-variant rollups (metrics), results, their series, automatic promotion
``ingest``     the snippet's events, stored by the endpoint and folded by the applier; responses
``rewards``    coupon pools and codes, the wheel's spin, orders from the shop
=============  ==================================================================================
"""

#: The areas in import order: a module of one may import modules of the areas before it only.
AREAS = ("platform", "funnel", "visitors", "campaigns", "promotion", "ingest", "rewards")
