"""What the snippet sends: event batches (impressions, closes, answers, conversions) applied to
assignments, responses, rollups and stages (``events``), and the survey responses they make, as
the admin page lists and exports them (``responses``).

May import: every other area.
"""
