"""Logging in to the admin page (with the test client or in the browser), reading its forms' CSRF
token, and screenshots of its pages."""

import re

from widget_server import PROJECT_ROOT

PASSWORD = "correct horse battery"

#: Screenshots of the browser tests land here (git-ignored), at desktop and phone widths.
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "admin"
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


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


def log_in_page(page, base: str) -> None:
    """Open the sites list in the browser, which asks to log in first, and log in as ``owner``."""
    page.goto(f"{base}/admin/sites")
    assert "/admin/login" in page.url
    page.fill("input[name=username]", "owner")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin/sites")


def shoot(page, name: str) -> None:
    """Save the page at desktop and phone widths (full page)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, size in WIDTHS.items():
        page.set_viewport_size(size)
        page.wait_for_timeout(150)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(WIDTHS["desktop"])
