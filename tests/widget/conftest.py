"""Fixtures of the snippet's browser tests: one headless Chromium per module, fresh contexts."""

import os

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright, shared by the tests of a module."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("no /usr/bin/chromium (make test installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """Open a page in a fresh context (its own storage).

    ``page.errors`` collects the uncaught exceptions the page saw, ``page.console_errors`` its
    console errors (a CSP refusal is one).
    """
    contexts = []

    def make(**context_options):
        context = browser.new_context(**context_options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.errors, page.console_errors = [], []
        page.on("pageerror", lambda error: page.errors.append(str(error)))

        def on_console(message):
            # The demo pages have no favicon; Chromium reports its 404 as a console error.
            if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
                page.console_errors.append(message.text)

        page.on("console", on_console)
        return page

    yield make
    for context in contexts:
        context.close()
