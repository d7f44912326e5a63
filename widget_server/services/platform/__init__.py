"""What every area leans on: upserts and row lookups, admin users and API tokens, signatures,
outgoing webhooks, change announcements, spreadsheet-safe cells and the health check.

May import: models, vocabulary, errors, extensions, outbound. No other service area.
"""
