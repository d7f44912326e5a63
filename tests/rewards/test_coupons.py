"""Coupon pools: CSV/JSON import with duplicates reported, generated codes, stock figures."""

import math
import re

import pytest

from tests.rewards.conftest import pool_slice, slice_, wheel_content
from widget_server import vocabulary
from widget_server.services.rewards import coupons


def pools_url(site):
    return f"/api/v1/admin/sites/{site['id']}/coupon-pools"


def test_csv_import_reports_duplicates_and_invalid_rows(admin, make_site, make_pool):
    site = make_site()
    pool = make_pool(site, codes=["OLD-1"])
    csv_body = (
        "id,code,note\n1,NEW-1,a\n2,NEW-2,b\n3,NEW-1,again\n4,OLD-1,existing\n5,has space,x\n\n"
    )
    response = admin.post(
        f"/api/v1/admin/coupon-pools/{pool['id']}/import",
        data=csv_body,
        content_type="text/csv",
    )
    assert response.status_code == 201, response.json
    assert response.json["imported"] == 1  # NEW-2; NEW-1 twice in the file is not merged
    assert sorted(response.json["duplicates"]) == ["NEW-1", "OLD-1"]
    assert list(response.json["invalid"]) == ["line 6"]
    assert response.json["pool"]["stock"] == {
        "available": 2,
        "assigned": 0,
        "redeemed": 0,
        "total": 2,
    }


def test_csv_without_header_takes_the_first_column(admin, make_site, make_pool):
    site = make_site()
    pool = make_pool(site)
    response = admin.post(
        f"/api/v1/admin/coupon-pools/{pool['id']}/import",
        data="AAA-1,10%\r\nAAA-2,10%\r\n",
        content_type="text/csv",
    )
    assert response.json["imported"] == 2


def test_codes_are_unique_per_site_across_pools(admin, make_site, make_pool):
    site = make_site()
    make_pool(site, "First", codes=["SHARED"])
    second = make_pool(site, "Second")
    response = admin.post(
        f"/api/v1/admin/coupon-pools/{second['id']}/import", json={"codes": ["SHARED"]}
    )
    assert (response.json["imported"], response.json["duplicates"]) == (0, ["SHARED"])


def test_empty_import_is_400(admin, make_site, make_pool):
    pool = make_pool(make_site())
    response = admin.post(
        f"/api/v1/admin/coupon-pools/{pool['id']}/import", data="", content_type="text/csv"
    )
    assert response.status_code == 400


def test_generated_codes_have_at_least_60_bits_and_no_lookalikes(admin, make_site, make_pool):
    site = make_site()
    pool = make_pool(site, generate=500, prefix="SUMMER-")
    assert pool["stock"]["available"] == 500
    from sqlalchemy import select

    from widget_server.extensions import db
    from widget_server.models import CouponCode

    codes = db.session.scalars(select(CouponCode.code).where(CouponCode.pool_id == pool["id"]))
    codes = list(codes)
    assert len(set(codes)) == 500
    assert not set("01IO") & set(vocabulary.CODE_ALPHABET)
    for code in codes:
        assert re.fullmatch(r"SUMMER-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code), code
        random_part = code.removeprefix("SUMMER-").replace("-", "")
        assert set(random_part) <= set(vocabulary.CODE_ALPHABET)
        assert len(vocabulary.CODE_ALPHABET) ** len(random_part) >= 2**60
    assert math.isclose(coupons.random_bits(12), 60.0)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"count": 0}, "count"),
        ({"count": 10, "symbols": 11}, "symbols"),  # 55 bits: too guessable
        ({"count": 10, "prefix": "has space"}, "prefix"),
        ({"count": "10"}, "count"),
    ],
)
def test_generate_refuses_bad_input(admin, make_site, make_pool, body, field):
    pool = make_pool(make_site())
    response = admin.post(f"/api/v1/admin/coupon-pools/{pool['id']}/generate", json=body)
    assert response.status_code == 400
    assert field in response.json["error"]["fields"]


def test_pool_list_shows_stock_per_pool(admin, make_site, make_pool):
    site = make_site()
    make_pool(site, "A", codes=["A-1", "A-2"])
    make_pool(site, "B", generate=3)
    listed = admin.get(pools_url(site)).json["pools"]
    assert [(p["name"], p["stock"]["available"], p["stock"]["total"]) for p in listed] == [
        ("A", 2, 2),
        ("B", 3, 3),
    ]


def test_pool_name_is_unique_per_site(admin, make_site, make_pool):
    site = make_site()
    make_pool(site, "Same")
    assert admin.post(pools_url(site), json={"name": "Same"}).status_code == 409
    assert admin.post(pools_url(make_site("Other")), json={"name": "Same"}).status_code == 201


def test_pool_endpoints_need_an_admin_token(client, make_site):
    site = make_site()
    assert client.get(pools_url(site)).status_code == 401


def test_import_coupons_command(runner, make_site, tmp_path):
    site = make_site()
    csv_file = tmp_path / "codes.csv"
    csv_file.write_text("code\nCLI-1\nCLI-2\nCLI-3\n")
    args = ["import-coupons", "--site-id", str(site["id"]), "--pool", "From CLI", str(csv_file)]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    assert "imported 3 codes" in result.output
    again = runner.invoke(args=args)
    assert again.exit_code == 1
    assert "duplicates not imported (3)" in again.output
    pool = coupons.find_pool(site["id"], "From CLI")
    assert coupons.stock([pool.id])[pool.id].available == 3


def test_import_coupons_command_unknown_site_fails_cleanly(runner, tmp_path):
    csv_file = tmp_path / "codes.csv"
    csv_file.write_text("X-1\n")
    result = runner.invoke(
        args=["import-coupons", "--site-id", "999", "--pool", "P", str(csv_file)]
    )
    assert result.exit_code != 0
    assert "No site 999" in result.output


# -- wheel content validation ------------------------------------------------------------------


def create_wheel(admin, site, content):
    return admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns",
        json={
            "name": "Wheel",
            "kind": "wheel",
            "variants": [{"name": "A", "content": content}],
        },
    )


@pytest.mark.parametrize(
    "slices, field",
    [
        ([], "variants.0.content.slices"),
        ([slice_("a", 0), slice_("b", 0)], "variants.0.content.slices"),
        ([slice_("a", -1), slice_("b", 1)], "variants.0.content.slices.0.weight"),
        ([slice_("a", 1, {"type": "code", "code": "X"})], "variants.0.content.slices"),
        (
            [slice_("a", 1, {"type": "pool"}), slice_("b", 1)],
            "variants.0.content.slices.0.reward.pool_id",
        ),
        (
            [slice_("a", 1, {"type": "code"}), slice_("b", 1)],
            "variants.0.content.slices.0.reward.code",
        ),
        (
            [slice_("a", 1, {"type": "none", "code": "X"})],
            "variants.0.content.slices.0.reward.code",
        ),
        ([slice_("a", 1, color="red")], "variants.0.content.slices.0.color"),
        ([slice_("a", float("inf"))], "variants.0.content.slices.0.weight"),
        (
            [slice_("a", 1, {"type": "pool", "pool_id": 2**31}), slice_("b", 1)],
            "variants.0.content.slices.0.reward.pool_id",
        ),
    ],
)
def test_wheel_content_is_validated(admin, make_site, slices, field):
    response = create_wheel(admin, make_site(), wheel_content(slices))
    assert response.status_code == 400, response.json
    assert field in response.json["error"]["fields"], response.json


def test_slice_pool_must_belong_to_the_same_site(admin, make_site, make_pool):
    site, other = make_site(), make_site("Other")
    foreign = make_pool(other, "Theirs", codes=["T-1"])
    content = wheel_content([pool_slice("10%", 1, foreign["id"]), slice_("No", 1)])
    response = create_wheel(admin, site, content)
    assert response.status_code == 400
    assert "variants.0.content.slices.0.reward.pool_id" in response.json["error"]["fields"]
    own = make_pool(site, "Ours", codes=["O-1"])
    content = wheel_content([pool_slice("10%", 1, own["id"]), slice_("No", 1)])
    created = create_wheel(admin, site, content)
    assert created.status_code == 201
    variant_id = created.json["variants"][0]["id"]
    content["slices"][0]["reward"]["pool_id"] = foreign["id"]
    patched = admin.patch(f"/api/v1/admin/variants/{variant_id}", json={"content": content})
    assert patched.status_code == 400
    assert "content.slices.0.reward.pool_id" in patched.json["error"]["fields"]


def test_csv_the_reader_cannot_split_is_400_naming_codes(admin, make_site, make_pool):
    pool = make_pool(make_site())
    response = admin.post(
        f"/api/v1/admin/coupon-pools/{pool['id']}/import",
        data="code\nOK-1\n" + "A" * 200_000 + "\n",
        content_type="text/csv",
    )
    assert response.status_code == 400, response.json
    assert response.json["error"]["fields"]["codes"][0].startswith("line 3")
    assert coupons.stock([pool["id"]])[pool["id"]].total == 0


def test_import_coupons_command_refuses_a_file_that_is_not_utf8(runner, make_site, tmp_path):
    site = make_site()
    csv_file = tmp_path / "codes.csv"
    csv_file.write_bytes(b"code\n\xff\xfeX-1\n")
    args = ["import-coupons", "--site-id", str(site["id"]), "--pool", "P", str(csv_file)]
    result = runner.invoke(args=args)
    assert result.exit_code == 1
    assert "not UTF-8" in result.output
    assert coupons.find_pool(site["id"], "P") is None
