"""HTTP API blueprints: the public API the snippet calls, and the admin API."""
