"""What the snippet sends: event batches (impressions, closes, answers, conversions), stored by
the endpoint in one statement (``events``) and folded into assignments, responses, rollups and
stages in bulk by the applier (``applier``); and the survey responses they make, as the admin
page lists and exports them (``responses``).

May import: platform, funnel, visitors, campaigns, promotion.
"""
