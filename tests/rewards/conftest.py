"""Fixtures for the wheel, coupon and order tests: pools and wheel campaigns via the admin API."""

import pytest


def slice_(label, weight, reward=None, color="#2a9d8f"):
    return {"label": label, "color": color, "weight": weight, "reward": reward or {"type": "none"}}


def pool_slice(label, weight, pool_id):
    return slice_(label, weight, {"type": "pool", "pool_id": pool_id})


def wheel_content(slices, **extra) -> dict:
    return {"title": "Spin to win", "slices": slices, **extra}


@pytest.fixture
def make_pool(admin):
    """Create a coupon pool on a site, optionally with imported codes or ``generate`` codes."""

    def make(site, name="Pool", codes=None, generate=0, prefix="T-"):
        created = admin.post(f"/api/v1/admin/sites/{site['id']}/coupon-pools", json={"name": name})
        assert created.status_code == 201, created.json
        pool = created.json
        if codes:
            imported = admin.post(
                f"/api/v1/admin/coupon-pools/{pool['id']}/import", json={"codes": codes}
            )
            assert imported.status_code == 201, imported.json
        if generate:
            made = admin.post(
                f"/api/v1/admin/coupon-pools/{pool['id']}/generate",
                json={"count": generate, "prefix": prefix},
            )
            assert made.status_code == 201, made.json
        return admin.get(f"/api/v1/admin/coupon-pools/{pool['id']}").json

    return make


@pytest.fixture
def make_wheel(make_campaign):
    """Create and start a wheel campaign with one variant of these slices."""

    def make(site, slices, email_capture=None, **fields):
        content = wheel_content(slices)
        if email_capture is not None:
            content["email_capture"] = email_capture
        variants = [{"name": "A", "is_control": True, "content": content}]
        return make_campaign(site, kind="wheel", name="Wheel", variants=variants, **fields)

    return make
