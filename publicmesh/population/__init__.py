"""Synthetic population of Japan: real municipalities and addresses, households, names, incomes."""

from publicmesh.population.generate import BLOCK, SCHEMA, generate, generate_frame, generate_table
from publicmesh.population.names import (
    FAMILY_NAMES,
    FEMALE_NAMES,
    MALE_NAMES,
    hepburn,
    to_bank_kana,
    to_halfwidth_kana,
)
from publicmesh.population.places import (
    DEMO_MUNICIPALITIES,
    Municipality,
    check_digit,
    municipalities,
    municipality,
    municipality_codes,
)
from publicmesh.population.summary import summarize

__all__ = [
    "BLOCK",
    "DEMO_MUNICIPALITIES",
    "FAMILY_NAMES",
    "FEMALE_NAMES",
    "MALE_NAMES",
    "Municipality",
    "SCHEMA",
    "check_digit",
    "generate",
    "generate_frame",
    "generate_table",
    "hepburn",
    "municipalities",
    "municipality",
    "municipality_codes",
    "summarize",
    "to_bank_kana",
    "to_halfwidth_kana",
]
