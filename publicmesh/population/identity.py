"""Names, addresses and employers for simulated households, drawn as indices into small tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from publicmesh.population import households
from publicmesh.population.names import ERAS, FAMILY_NAMES, FEMALE_NAMES, MALE_NAMES
from publicmesh.population.places import Municipality, municipalities

# Name → array; names and employers are per person, address parts per household.
Identities = dict[str, np.ndarray]

# P(name from era o, m, n) for people born before 1956, in 1956–1989, and from 1990.
ERA_BOUNDS = np.array([1956, 1990])
ERA_SHARES = np.array([[0.85, 0.15, 0.0], [0.10, 0.80, 0.10], [0.0, 0.20, 0.80]])
IN_LAW_PARENTS = 0.3  # parents living with the head who are the spouse's, under another name
NON_REGISTERED = 0.01  # households whose records a municipality holds as 住登外者
PROTECTED = 0.002  # households under DV等支援措置
EMPLOYER_POOL = 50_000


@dataclass(frozen=True)
class NameTables:
    """Arrow string arrays of the name tables; given names are male then female."""

    family_kanji: pa.Array
    family_kana: pa.Array
    family_romaji: pa.Array
    family_cumulative: np.ndarray
    given_kanji: pa.Array
    given_kana: pa.Array
    given_romaji: pa.Array
    given_by_group: np.ndarray  # given-name rows grouped by (sex, era)
    group_start: np.ndarray  # (2, 3): first row of each group in given_by_group
    group_size: np.ndarray  # (2, 3)


@lru_cache(maxsize=1)
def name_tables() -> NameTables:
    """The name tables, built once."""
    given = MALE_NAMES + FEMALE_NAMES
    sexes = np.array([0] * len(MALE_NAMES) + [1] * len(FEMALE_NAMES))
    eras = np.array([ERAS.index(g.era) for g in given])
    group = sexes * 3 + eras
    order = np.argsort(group, kind="stable")
    size = np.bincount(group, minlength=6)
    weights = np.array([f.weight for f in FAMILY_NAMES], dtype=np.float64)
    return NameTables(
        family_kanji=pa.array([f.kanji for f in FAMILY_NAMES]),
        family_kana=pa.array([f.kana for f in FAMILY_NAMES]),
        family_romaji=pa.array([f.romaji for f in FAMILY_NAMES]),
        family_cumulative=np.cumsum(weights) / weights.sum(),
        given_kanji=pa.array([g.kanji for g in given]),
        given_kana=pa.array([g.kana for g in given]),
        given_romaji=pa.array([g.romaji for g in given]),
        given_by_group=order,
        group_start=(np.cumsum(size) - size).reshape(2, 3),
        group_size=size.reshape(2, 3),
    )


def names(rng: np.random.Generator, people: households.Block, birth_days: np.ndarray) -> Identities:
    """Family names shared per household (in-law parents aside) and given names fitting sex and birth year."""
    tables = name_tables()
    count = len(people.sizes)
    family = households.draw(rng, tables.family_cumulative, count)
    in_law = households.draw(rng, tables.family_cumulative, count)
    other_name = rng.random(count) < IN_LAW_PARENTS
    of = people.household
    family_row = np.where((people.relation == households.PARENT) & other_name[of], in_law[of], family[of])

    birth_year = 1970 + np.floor(birth_days / households.YEAR)
    cohort = np.searchsorted(ERA_BOUNDS, birth_year, side="right")
    era = households.pick(rng, np.cumsum(ERA_SHARES, axis=1)[cohort])
    sex = people.sex - 1
    offset = (rng.random(len(sex)) * tables.group_size[sex, era]).astype(np.int64)
    given_row = tables.given_by_group[tables.group_start[sex, era] + offset]
    return {"family": family_row, "given": given_row}


@dataclass(frozen=True)
class Places:
    """The postal areas of the chosen municipalities, flattened, with Arrow arrays for the strings."""

    codes: pa.Array  # per municipality
    area_start: np.ndarray  # per municipality
    area_count: np.ndarray
    postal_codes: pa.Array  # per area
    prefixes: pa.Array  # per area: prefecture + municipality + neighborhood
    chome_first: np.ndarray
    chome_last: np.ndarray  # 0 where the area uses 番地

    @classmethod
    def of(cls, chosen: Sequence[Municipality]) -> Places:
        """Flatten `chosen` municipalities."""
        count = np.array([len(m.postal_areas) for m in chosen])
        areas = [(m, a, c) for m in chosen for a, c in zip(m.postal_areas, m.chome_ranges)]
        return cls(
            codes=pa.array([m.code for m in chosen]),
            area_start=np.cumsum(count) - count,
            area_count=count,
            postal_codes=pa.array([a[0] for _, a, _ in areas]),
            prefixes=pa.array([m.prefecture + m.name + a[1] for m, a, _ in areas]),
            chome_first=np.array([c[0] for _, _, c in areas]),
            chome_last=np.array([c[1] for _, _, c in areas]),
        )

    def address(self, area: np.ndarray, chome: np.ndarray, banchi: np.ndarray, go: np.ndarray) -> pa.Array:
        """Full addresses: "…3丁目12番5号" where the area has 丁目, else "…123番地4"."""
        prefix = self.prefixes.take(pa.array(area))
        text = [pc.cast(pa.array(a), pa.string()) for a in (chome, banchi, go)]
        with_chome = pc.binary_join_element_wise(prefix, text[0], "丁目", text[1], "番", text[2], "号", "")
        plain = pc.binary_join_element_wise(prefix, text[1], "番地", text[2], "")
        return pc.if_else(pa.array(self.chome_last[area] > 0), with_chome, plain)


@lru_cache(maxsize=8)
def places_for(codes: tuple[str, ...]) -> Places:
    """The flattened places of `codes`, cached."""
    return Places.of(municipalities(codes))


def addresses(rng: np.random.Generator, people: households.Block, places: Places) -> Identities:
    """Per household: municipality, postal area, street numbers, 住登外 holder, and protection."""
    count = len(people.sizes)
    towns = len(places.area_count)
    residence = (rng.random(count) * towns).astype(np.int64)
    area = places.area_start[residence] + (rng.random(count) * places.area_count[residence]).astype(np.int64)
    first, last = places.chome_first[area], places.chome_last[area]
    has_chome = last > 0
    chome = np.where(has_chome, first + (rng.random(count) * (last - first + 1)).astype(np.int64), 0)
    # Blocks in a 丁目 run to a few dozen; rural 地番 run into the hundreds, mostly low.
    banchi = 1 + np.where(has_chome, rng.random(count) * 30, rng.random(count) ** 2 * 600).astype(np.int64)
    go = 1 + (rng.random(count) * np.where(has_chome, 20, 15)).astype(np.int64)
    # A non-registered household is held by another of the municipalities than the one it lives in.
    moved = (rng.random(count) < NON_REGISTERED) & (towns > 1)
    other = (residence + 1 + (rng.random(count) * max(towns - 1, 1)).astype(np.int64)) % towns
    return {
        "area": area,
        "chome": chome,
        "banchi": banchi,
        "go": go,
        "residence": residence,
        "holding": np.where(moved, other, residence),
        "protected": rng.random(count) < PROTECTED,
    }


def corporate_check_digits(bases: np.ndarray) -> np.ndarray:
    """法人番号 check digits of 12-digit bases: 9 − (Σ digit·(1 or 2) mod 9), weights from the right."""
    digits = (bases[:, None] // 10 ** np.arange(12, dtype=np.int64)) % 10
    weights = np.where(np.arange(12) % 2 == 0, 1, 2)
    return 9 - (digits * weights).sum(axis=1) % 9


@dataclass(frozen=True)
class Employers:
    """A seed's pool of employers: 13-digit corporate numbers with Zipf-like sizes."""

    codes: pa.Array
    cumulative: np.ndarray

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Employer rows for `n` people (used only where the person is employed)."""
        return households.draw(rng, self.cumulative, n)


@lru_cache(maxsize=8)
def employers(seed: int) -> Employers:
    """The employer pool of `seed`, the same for every block."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(1,))))
    drawn = rng.integers(10**10, 10**12, size=EMPLOYER_POOL * 2)
    _, first = np.unique(drawn, return_index=True)
    bases = drawn[np.sort(first)][:EMPLOYER_POOL]  # distinct, in drawn order (so rank ≠ size of number)
    numbers = corporate_check_digits(bases) * 10**12 + bases
    weights = 1.0 / np.arange(1, len(bases) + 1) ** 1.05
    return Employers(
        codes=pa.array(np.char.zfill(numbers.astype(str), 13)),
        cumulative=np.cumsum(weights) / weights.sum(),
    )
