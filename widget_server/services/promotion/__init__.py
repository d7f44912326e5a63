"""A/B results and automatic promotion: per-variant daily rollups (``metrics``), the results a
campaign shows (``results``, ``result_series``), and the rounds that judge and promote winners
(``evaluation``) through the pure engine in ``ab/``.

May import: platform, funnel, visitors, campaigns.
"""
