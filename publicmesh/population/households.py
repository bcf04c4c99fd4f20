"""Vectorised simulation of one block of households: composition, sexes, birth and death dates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

YEAR = 365.2425  # days
RELATIONS = ("head", "spouse", "child", "parent", "single")
HEAD, SPOUSE, CHILD, PARENT, SINGLE = range(5)

# Household types with their shares of households (2020 census, simplified); mean size ≈ 2.2.
LONE, COUPLE, NUCLEAR, LONE_PARENT, THREE_GENERATION, WITH_PARENT = range(6)
TYPE_SHARES = np.array([0.38, 0.20, 0.25, 0.09, 0.05, 0.03])
HAS_SPOUSE = np.array([False, True, True, False, True, False])
# P(number of children = 0..4) and P(parents of the head = 0..2), per type.
CHILDREN_SHARES = np.array(
    [
        [1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0],
        [0, 0.40, 0.45, 0.13, 0.02],
        [0, 0.60, 0.32, 0.08, 0],
        [0.30, 0.30, 0.30, 0.10, 0],
        [1, 0, 0, 0, 0],
    ]
)
PARENT_SHARES = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0.6, 0.4], [0, 0.7, 0.3]])
# Head age mixture per type: up to three (from, to, weight) components, in years.
HEAD_AGES = np.array(
    [
        [(20, 40, 0.45), (40, 65, 0.20), (65, 95, 0.35)],
        [(22, 40, 0.25), (40, 55, 0.15), (55, 92, 0.60)],
        [(27, 58, 1.0), (0, 0, 0), (0, 0, 0)],
        [(24, 58, 1.0), (0, 0, 0), (0, 0, 0)],
        [(32, 60, 1.0), (0, 0, 0), (0, 0, 0)],
        [(30, 64, 1.0), (0, 0, 0), (0, 0, 0)],
    ]
)
HEAD_MALE = np.array([0.55, 0.90, 0.90, 0.15, 0.90, 0.60])
ELDERLY_LONE_MALE = 0.30  # most people living alone past 65 are widows
# A child is this many days younger than either parent at least: more than 18 years in any calendar.
MIN_PARENT_GAP = 6576
MAX_MOTHER_GAP = int(45 * YEAR)
MAX_CHILD_AGE = int(25 * YEAR)
ADULT = int(np.ceil(20 * YEAR))  # the youngest spouse
# Annual death probability exp(a + b·age), Gompertz-like; a tuned for ≈1% crude mortality here.
GOMPERTZ_A, GOMPERTZ_B = -10.8, 0.095
MALE_MORTALITY, FEMALE_MORTALITY = 1.25, 0.8


@dataclass
class Block:
    """One block: per-person arrays, and per-household arrays (starts, sizes) indexed by `household`."""

    household: np.ndarray  # block-local household index per person
    starts: np.ndarray  # first person of each household
    sizes: np.ndarray
    relation: np.ndarray  # int8 into RELATIONS
    sex: np.ndarray  # int8: 1 male, 2 female
    age_days: np.ndarray  # int32, days from birth to as_of (birth_date = as_of − age_days, ≥ 1)
    dead: np.ndarray  # bool
    death_offset: np.ndarray  # int32 days before as_of (meaningful where dead)


def pick(rng: np.random.Generator, cumulative: np.ndarray) -> np.ndarray:
    """Row-wise categorical draws: row i of `cumulative` holds the cumulative probabilities for draw i."""
    u = rng.random((cumulative.shape[0],))
    return np.minimum((u[:, None] >= cumulative).sum(axis=1), cumulative.shape[1] - 1)


def draw(rng: np.random.Generator, cumulative: np.ndarray, n: int) -> np.ndarray:
    """`n` draws from one categorical distribution given by its cumulative probabilities."""
    rows = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
    return np.minimum(rows, len(cumulative) - 1)


def calendar_age(birth_days: np.ndarray, as_of_year: int, as_of_month: int, as_of_day: int) -> np.ndarray:
    """Whole calendar years of age on the as_of date (birthday reached by then), from days since 1970."""
    birth = birth_days.astype("datetime64[D]")
    month_start = birth.astype("datetime64[M]")
    year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    month = month_start.astype(np.int64) % 12 + 1
    day = (birth - month_start).astype(np.int64) + 1
    return as_of_year - year - (as_of_month * 100 + as_of_day < month * 100 + day)


def _compositions(rng: np.random.Generator, persons: int) -> tuple[np.ndarray, ...]:
    """Household types and member counts summing to exactly `persons`."""
    kinds, children, parents = [], [], []
    total = 0
    while total < persons:
        n = persons // 2 + 16  # mean size is ≈2.2, so one round almost always suffices
        kind = draw(rng, np.cumsum(TYPE_SHARES), n)
        kinds.append(kind)
        children.append(pick(rng, np.cumsum(CHILDREN_SHARES, axis=1)[kind]))
        parents.append(pick(rng, np.cumsum(PARENT_SHARES, axis=1)[kind]))
        total += int((1 + HAS_SPOUSE[kind] + children[-1] + parents[-1]).sum())
    kind, n_children, n_parents = (np.concatenate(a) for a in (kinds, children, parents))
    spouse = HAS_SPOUSE[kind].astype(np.int64)
    sizes = 1 + spouse + n_children + n_parents
    ends = np.cumsum(sizes)
    count = int(np.searchsorted(ends, persons)) + 1
    kind, spouse, n_children, n_parents, sizes = (
        a[:count].copy() for a in (kind, spouse, n_children, n_parents, sizes)
    )
    # Trim the last household to the budget from its end: parents, then children, then the spouse.
    excess = int(ends[count - 1]) - persons
    for counts in (n_parents, n_children, spouse):
        cut = min(excess, int(counts[-1]))
        counts[-1] -= cut
        excess -= cut
    sizes[-1] = 1 + spouse[-1] + n_children[-1] + n_parents[-1]
    return kind, spouse, n_children, n_parents, sizes


def _years(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Uniform ages in days from `low` (rounded up, so a calendar age of `low` is reached) to `high` years."""
    spread = ((high - low) * rng.random(len(low)) * YEAR).astype(np.int64)
    return np.ceil(low * YEAR).astype(np.int64) + spread


def simulate(rng: np.random.Generator, persons: int, window_days: int) -> Block:
    """Simulate `persons` residents in whole households; deaths fall in the last `window_days` days."""
    kind, spouse, n_children, n_parents, sizes = _compositions(rng, persons)
    households = len(sizes)
    starts = np.cumsum(sizes) - sizes
    household = np.repeat(np.arange(households), sizes)
    position = np.arange(persons) - starts[household]

    # Heads: an age band chosen from the type's mixture, then a uniform age within it.
    bands = HEAD_AGES[kind]
    band = pick(rng, np.cumsum(bands[:, :, 2], axis=1))
    chosen = bands[np.arange(households), band]
    head_age = _years(rng, chosen[:, 0], chosen[:, 1])
    male_share = np.where((kind == LONE) & (head_age >= 65 * YEAR), ELDERLY_LONE_MALE, HEAD_MALE[kind])
    head_male = rng.random(households) < male_share

    # Spouses: opposite sex, about two years younger than a husband (older than a wife), at least 20.
    gap = np.clip(rng.normal(np.where(head_male, -2.0, 2.0), 3.0), -10, 10)
    spouse_age = np.maximum(head_age + (gap * YEAR).astype(np.int64), ADULT)
    # Children are measured against the younger parent, so they are ≥18 years younger than both.
    younger_parent = np.where(spouse > 0, np.minimum(head_age, spouse_age), head_age)
    mother_age = np.where(spouse > 0, np.where(head_male, spouse_age, head_age), head_age)
    child_max = np.minimum(MAX_CHILD_AGE, younger_parent - MIN_PARENT_GAP)
    child_min = np.minimum(np.maximum(1, mother_age - MAX_MOTHER_GAP), child_max)
    # Parents of the head are 20–40 years older, but no older than 100.
    parent_gap_max = np.minimum(40 * YEAR, 100 * YEAR - head_age) / YEAR

    relation = np.full(persons, PARENT, dtype=np.int8)
    after_spouse = position - 1 - spouse[household]
    relation[(after_spouse >= 0) & (after_spouse < n_children[household])] = CHILD
    relation[(position == 1) & (spouse[household] > 0)] = SPOUSE
    relation[position == 0] = np.where(sizes == 1, SINGLE, HEAD).astype(np.int8)

    age = np.empty(persons, dtype=np.int64)
    male = rng.random(persons) < 0.512  # children: the sex ratio at birth
    is_head = position == 0
    age[is_head] = head_age
    male[is_head] = head_male
    is_spouse = relation == SPOUSE
    age[is_spouse] = spouse_age[household[is_spouse]]
    male[is_spouse] = ~head_male[household[is_spouse]]
    is_child = relation == CHILD
    low, high = child_min[household[is_child]], child_max[household[is_child]]
    age[is_child] = low + (rng.random(int(is_child.sum())) * (high - low + 1)).astype(np.int64)
    is_parent = relation == PARENT
    of_parent = household[is_parent]
    age[is_parent] = head_age[of_parent] + _years(
        rng, np.full(len(of_parent), 20.0), np.maximum(parent_gap_max[of_parent], 20.0)
    )
    # Two parents are father then mother; a lone parent is usually the (longer-lived) mother.
    parent_rank = position[is_parent] - 1 - spouse[of_parent] - n_children[of_parent]
    lone_father = rng.random(len(of_parent)) < 0.3
    male[is_parent] = np.where(n_parents[of_parent] == 2, parent_rank == 0, lone_father)
    sex = np.where(male, 1, 2).astype(np.int8)

    hazard = np.exp(GOMPERTZ_A + GOMPERTZ_B * age / YEAR) * np.where(male, MALE_MORTALITY, FEMALE_MORTALITY)
    dead = rng.random(persons) < np.minimum(hazard, 0.5)
    # Died 1..window_days days before as_of, but never before birth.
    death_offset = np.minimum(1 + (rng.random(persons) * window_days).astype(np.int64), age)
    return Block(
        household=household,
        starts=starts,
        sizes=sizes,
        relation=relation,
        sex=sex,
        age_days=age.astype(np.int32),
        dead=dead,
        death_offset=death_offset.astype(np.int32),
    )
