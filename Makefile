# The two commands of the README. Both install what they need first.
PYTHON ?= python3
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check

.PHONY: demo test install install-test browser lint

## Install Funnelcake and run the demo store on http://127.0.0.1:5000 (SQLite, nothing to set up).
demo: install
	$(PYTHON) -m widget_server demo

## Install everything the tests need (packages, Debian's Chromium) and run the whole suite.
test: install-test
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m pytest

install:
	$(PIP) -e .

install-test:
	$(PIP) -e '.[test]'
	@command -v chromium >/dev/null 2>&1 || $(MAKE) --no-print-directory browser

# Browser tests drive Debian's Chromium through Playwright (no browser download is needed).
browser:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
