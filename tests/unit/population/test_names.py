"""Name tables: sizes, readings, passport Hepburn."""

import re

import pytest

from publicmesh.population.names import (
    ERAS,
    FAMILY_NAMES,
    FEMALE_NAMES,
    MALE_NAMES,
    hepburn,
)

KATAKANA = re.compile(r"^[ァ-ヶー]+$")
ROMAJI = re.compile(r"^[A-Z][a-z]+$")
ALL = FAMILY_NAMES + MALE_NAMES + FEMALE_NAMES


def test_table_sizes():
    assert len(FAMILY_NAMES) >= 150
    assert len(MALE_NAMES) >= 100
    assert len(FEMALE_NAMES) >= 100


def test_no_duplicate_kanji():
    for table in (FAMILY_NAMES, MALE_NAMES, FEMALE_NAMES):
        kanji = [n.kanji for n in table]
        assert len(kanji) == len(set(kanji))


def test_most_common_family_names_lead_the_weights():
    top = [n.kanji for n in sorted(FAMILY_NAMES, key=lambda n: -n.weight)[:10]]
    assert set(top) == {"佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤"}
    assert top[0] == "佐藤"


def test_readings_are_katakana_and_romaji_ascii():
    for name in ALL:
        assert KATAKANA.match(name.kana), name
        assert ROMAJI.match(name.romaji), name


def test_romaji_is_the_hepburn_of_the_reading():
    mismatched = [(n.kanji, n.kana, n.romaji, hepburn(n.kana)) for n in ALL if hepburn(n.kana) != n.romaji]
    assert mismatched == []


def test_every_generation_has_names():
    for table in (MALE_NAMES, FEMALE_NAMES):
        assert {n.era for n in table} == set(ERAS)
        assert all(sum(n.era == era for n in table) >= 30 for era in ERAS)


@pytest.mark.parametrize(
    "kana, romaji",
    [
        ("サトウ", "Sato"),
        ("オオノ", "Ono"),
        ("オオウチ", "Ouchi"),
        ("ホンマ", "Homma"),
        ("ナンバ", "Namba"),
        ("ハットリ", "Hattori"),
        ("ボッチャン", "Botchan"),
        ("ジュンイチ", "Junichi"),
        ("キョウコ", "Kyoko"),
        ("ユウコ", "Yuko"),
        ("イシイ", "Ishii"),
        ("モチヅキ", "Mochizuki"),
        ("イノウエ", "Inoue"),
    ],
)
def test_passport_hepburn(kana, romaji):
    assert hepburn(kana) == romaji


def test_hepburn_rejects_non_katakana():
    with pytest.raises(ValueError):
        hepburn("さとう")
