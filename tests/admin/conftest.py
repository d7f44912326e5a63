"""Fixtures of the admin-page tests: an admin user and a test client logged in as them."""

import pytest

from tests.admin.helpers import PASSWORD, csrf_token, log_in
from widget_server.services.platform.admin_users import create_admin


@pytest.fixture
def owner(app):
    """An admin-page user ``owner``."""
    return create_admin("owner", PASSWORD)


class PageClient:
    """The test client, logged in, posting forms with the session's CSRF token."""

    def __init__(self, client):
        self.client = client
        self.token = csrf_token(client, "/admin/sites")

    def get(self, path, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path, data=None, **kwargs):
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)


@pytest.fixture
def page(client, owner):
    """A logged-in admin-page client."""
    response = log_in(client)
    assert response.status_code == 302, response.get_data(as_text=True)
    return PageClient(client)
