"""Campaigns as decide sees them: sites, campaigns and variants (``catalog``, with the status
machine of ``vocabulary``), each site's compiled and cached config (``site_config``), URL patterns
and targeting, and ``decide``, which picks the popups a visitor may see on a page.

May import: platform, funnel, visitors.
"""
