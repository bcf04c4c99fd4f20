"""Where each part listens and which members it speaks for, derived from the settings."""

from __future__ import annotations

import os
from dataclasses import dataclass

from publicmesh.agencies.catalog import AGENCIES
from publicmesh.mesh.members import HUB, PORTAL, MemberId
from publicmesh.numbers.app import NUMBERS
from publicmesh.settings import Settings

DEFAULT_MUNICIPALITIES = ("012084", "131016", "132012", "232025", "472018")


def municipalities() -> tuple[str, ...]:
    chosen = os.environ.get("PUBLICMESH_MUNICIPALITIES")
    if chosen:
        return tuple(c.strip() for c in chosen.split(",") if c.strip())
    try:
        from publicmesh.population.places import DEMO_MUNICIPALITIES
        return tuple(DEMO_MUNICIPALITIES)
    except ImportError:
        return DEFAULT_MUNICIPALITIES


@dataclass(frozen=True)
class Part:
    name: str  # "numbers", "hub" or an agency system
    port: int
    members: tuple[MemberId, ...]

    def url(self, settings: Settings) -> str:
        return f"http://{settings.host}:{self.port}"


def parts(settings: Settings) -> list[Part]:
    """Start-up order: the number service, the hub, the resident portal, every agency node, then the staff console
    (the staff face of the services node: it speaks for no member of its own)."""
    codes = municipalities()
    out = [Part("numbers", settings.base_port, (NUMBERS,)), Part("hub", settings.base_port + 1, (HUB,)),
           Part("portal", settings.base_port + 2, (PORTAL,))]
    for i, agency in enumerate(AGENCIES.values()):
        out.append(Part(agency.system, settings.base_port + 10 + i, tuple(agency.members(codes))))
    out.append(Part("console", settings.base_port + 3, ()))
    return out


def part(settings: Settings, name: str) -> Part:
    for p in parts(settings):
        if p.name == name:
            return p
    raise KeyError(f"no part named {name!r}; parts are {', '.join(p.name for p in parts(settings))}")
