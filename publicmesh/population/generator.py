"""Deterministic, vectorised synthetic residents of Japanese municipalities, streamed as Arrow chunks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import cast

import numpy as np
import polars as pl
import pyarrow as pa

from publicmesh.population import economy, households
from publicmesh.population.identity import Identities, addresses, employers, name_tables, names, places_for
from publicmesh.population.places import DEMO_MUNICIPALITIES

# Randomness is keyed by (seed, block): a block of BLOCK persons is the unit every chunk is made of,
# so any chunk can be produced on its own and the people do not depend on chunk_size.
BLOCK = 10_000
EPOCH = date(1970, 1, 1)

_LABEL = pa.dictionary(pa.int8(), pa.string())
SCHEMA = pa.schema(
    [
        ("person_index", pa.int64()),
        ("household_id", pa.int64()),
        ("relation", _LABEL),
        ("household_size", pa.int8()),
        ("family_name", pa.string()),
        ("given_name", pa.string()),
        ("family_name_kana", pa.string()),
        ("given_name_kana", pa.string()),
        ("family_name_romaji", pa.string()),
        ("given_name_romaji", pa.string()),
        ("sex", pa.int8()),
        ("birth_date", pa.date32()),
        ("death_date", pa.date32()),
        ("born_this_year", pa.bool_()),
        ("municipality_code", pa.string()),
        ("residence_municipality_code", pa.string()),
        ("postal_code", pa.string()),
        ("address", pa.string()),
        ("registered", pa.bool_()),
        ("address_protected", pa.bool_()),
        ("employment", _LABEL),
        ("income", pa.int64()),
        ("taxable_income", pa.int64()),
        ("employer_code", pa.string()),
        ("pension_kind", _LABEL),
        ("pension_monthly", pa.int64()),
        ("health_insurance", _LABEL),
        ("insurance_dependent", pa.bool_()),
    ]
)


@dataclass
class _Block:
    """One block as numpy arrays: households, economy, identities, and dates derived per person."""

    people: households.Block
    economy: economy.Economy
    identities: Identities
    birth_days: np.ndarray
    born_this_year: np.ndarray


def _one_year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _simulate_block(seed: int, index: int, persons: int, codes: tuple[str, ...], as_of: date) -> _Block:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0, index))))
    window = (as_of - _one_year_before(as_of)).days  # the 12 months before as_of, in days
    people = households.simulate(rng, persons, window - 1)
    head_row = people.starts[people.household]
    birth_days = (as_of - EPOCH).days - people.age_days
    age = households.calendar_age(birth_days, as_of.year, as_of.month, as_of.day)
    money = economy.simulate(rng, age, people.sex, people.relation, head_row)
    identities = names(rng, people, birth_days) | addresses(rng, people, places_for(codes))
    identities["employer"] = employers(seed).draw(rng, persons)
    return _Block(people, money, identities, birth_days.astype(np.int32), people.age_days < window)


def _labels(codes: np.ndarray, labels: Sequence[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()), pa.array(labels, pa.string()))


def _take(values: pa.Array, indices: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return values.take(pa.array(indices, mask=mask))


def _table(blocks: list[_Block], first_person: int, codes: tuple[str, ...], seed: int, as_of: date) -> pa.Table:
    """Assemble blocks into one Arrow table, turning category codes into strings with Arrow takes."""
    tables = name_tables()
    places = places_for(codes)
    # Household arrays are block-local: shift each block's household numbers past the previous ones.
    shifts = np.cumsum([0] + [len(b.people.sizes) for b in blocks[:-1]])
    household = np.concatenate([b.people.household + s for b, s in zip(blocks, shifts)])
    starts = np.concatenate([b.people.starts + first_person + i * BLOCK for i, b in enumerate(blocks)])
    sizes = np.concatenate([b.people.sizes for b in blocks])

    def person(field: str) -> np.ndarray:
        return np.concatenate([getattr(b.people, field) for b in blocks])

    def money(field: str) -> np.ndarray:
        return np.concatenate([getattr(b.economy, field) for b in blocks])

    def ident(field: str) -> np.ndarray:
        return np.concatenate([b.identities[field] for b in blocks])

    n = len(household)
    dead = person("dead")
    as_of_days = (as_of - EPOCH).days
    area = ident("area")  # per household
    address = places.address(area, ident("chome"), ident("banchi"), ident("go")).take(pa.array(household))
    family, given = ident("family"), ident("given")
    residence = ident("residence")[household]
    holding = ident("holding")[household]
    columns = [
        pa.array(np.arange(first_person, first_person + n, dtype=np.int64)),
        pa.array(starts[household]),
        _labels(person("relation"), households.RELATIONS),
        pa.array(sizes[household].astype(np.int8)),
        _take(tables.family_kanji, family),
        _take(tables.given_kanji, given),
        _take(tables.family_kana, family),
        _take(tables.given_kana, given),
        _take(tables.family_romaji, family),
        _take(tables.given_romaji, given),
        pa.array(person("sex")),
        pa.array(np.concatenate([b.birth_days for b in blocks]), pa.date32()),
        pa.array((as_of_days - person("death_offset")).astype(np.int32), pa.date32(), mask=~dead),
        pa.array(np.concatenate([b.born_this_year for b in blocks])),
        _take(places.codes, holding),
        _take(places.codes, residence),
        _take(places.postal_codes, area[household]),
        address,
        pa.array(holding == residence),
        pa.array(ident("protected")[household]),
        _labels(money("employment"), economy.EMPLOYMENTS),
        pa.array(money("income")),
        pa.array(money("taxable_income")),
        _take(employers(seed).codes, ident("employer"), mask=~money("has_employer")),
        _labels(money("pension_kind"), economy.PENSION_KINDS),
        pa.array(money("pension_monthly")),
        _labels(money("health_insurance"), economy.HEALTH_INSURANCES),
        pa.array(money("insurance_dependent")),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def generate(
    residents: int,
    *,
    seed: int,
    municipalities: Sequence[str] = DEMO_MUNICIPALITIES,
    chunk_size: int = 1_000_000,
    as_of: date = date(2026, 4, 1),
) -> Iterator[pa.Table]:
    """Yield the persons table in chunks of whole households (chunk_size rounded to 10,000-person blocks).

    Person i is the same for a given seed, municipalities and as_of whatever the chunk_size, and the
    same seed and arguments always give byte-identical tables. Arguments are checked at the call.
    """
    if residents < 0:
        raise ValueError("residents must be ≥ 0")
    if seed < 0:
        raise ValueError("seed must be ≥ 0")
    codes = tuple(municipalities)
    if not codes or len(set(codes)) != len(codes):
        raise ValueError("municipalities must be a non-empty list of distinct codes")
    places_for(codes)  # KeyError now for an unknown code or a wrong check digit
    return _chunks(residents, seed, codes, max(1, chunk_size // BLOCK), as_of)


def _chunks(
    residents: int, seed: int, codes: tuple[str, ...], blocks_per_chunk: int, as_of: date
) -> Iterator[pa.Table]:
    total_blocks = -(-residents // BLOCK)
    for first_block in range(0, total_blocks, blocks_per_chunk):
        indices = range(first_block, min(first_block + blocks_per_chunk, total_blocks))
        blocks = [_simulate_block(seed, i, min(BLOCK, residents - i * BLOCK), codes, as_of) for i in indices]
        yield _table(blocks, first_block * BLOCK, codes, seed, as_of)


def generate_table(
    residents: int,
    *,
    seed: int,
    municipalities: Sequence[str] = DEMO_MUNICIPALITIES,
    chunk_size: int = 1_000_000,
    as_of: date = date(2026, 4, 1),
) -> pa.Table:
    """The whole persons table as one Arrow table (for populations that fit in memory)."""
    chunks = list(generate(residents, seed=seed, municipalities=municipalities, chunk_size=chunk_size, as_of=as_of))
    return pa.concat_tables(chunks) if chunks else SCHEMA.empty_table()


def generate_frame(
    residents: int,
    *,
    seed: int,
    municipalities: Sequence[str] = DEMO_MUNICIPALITIES,
    chunk_size: int = 1_000_000,
    as_of: date = date(2026, 4, 1),
) -> pl.DataFrame:
    """The whole persons table as a Polars DataFrame (the label columns become Categorical)."""
    table = generate_table(residents, seed=seed, municipalities=municipalities, chunk_size=chunk_size, as_of=as_of)
    return cast(pl.DataFrame, pl.from_arrow(table))  # a table's rows come back as a DataFrame


__all__ = ["BLOCK", "SCHEMA", "generate", "generate_frame", "generate_table"]
