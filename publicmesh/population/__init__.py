"""Synthetic population of Japan: real municipalities and addresses, households, names, incomes.

The names below are loaded on first use (PEP 562): a part that only needs the municipalities (every part does,
through the topology) does not load the generator, and Polars with it."""

import importlib

_HOME = {
    "BLOCK": "generator",
    "SCHEMA": "generator",
    "generate": "generator",
    "generate_frame": "generator",
    "generate_table": "generator",
    "FAMILY_NAMES": "names",
    "FEMALE_NAMES": "names",
    "MALE_NAMES": "names",
    "hepburn": "names",
    "DEMO_MUNICIPALITIES": "places",
    "Municipality": "places",
    "check_digit": "places",
    "municipalities": "places",
    "municipality": "places",
    "municipality_codes": "places",
    "summarize": "summary",
}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value
