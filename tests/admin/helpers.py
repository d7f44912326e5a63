"""Logging in to the admin page and reading its forms' CSRF token."""

import re

PASSWORD = "correct horse battery"


def csrf_token(client, path="/admin/login") -> str:
    """The CSRF token of the form on ``path`` (the session's token)."""
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def log_in(client, username="owner", password=PASSWORD):
    token = csrf_token(client)
    return client.post(
        "/admin/login",
        data={"username": username, "password": password, "csrf_token": token},
    )
