"""Fixtures of the funnel tests."""

import pytest


@pytest.fixture
def site(make_site):
    """A site with the default funnel stages."""
    return make_site()
