"""Where each part listens and which members it speaks for, derived from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from publicmesh.population.places import served_codes
from publicmesh.protocol.members import HUB, NUMBERS, PORTAL, MemberId
from publicmesh.runtime.catalog import AGENCIES
from publicmesh.settings import HUB_PORT_OFFSET, Settings


@dataclass(frozen=True)
class Part:
    name: str  # "numbers", "hub" or an agency system
    port: int
    members: tuple[MemberId, ...]

    def url(self, settings: Settings) -> str:
        return f"http://{settings.host}:{self.port}"


def parts(settings: Settings) -> list[Part]:
    """Start-up order: the number service, the witness (it cosigns the hub's audit checkpoints and speaks for no
    member), the hub, the resident portal, every agency node, then the staff console (the staff face of the services
    node: it speaks for no member of its own)."""
    codes = served_codes(settings)
    out = [
        Part("numbers", settings.base_port, (NUMBERS,)),
        Part("witness", settings.base_port + 4, ()),
        Part("hub", settings.base_port + HUB_PORT_OFFSET, (HUB,)),
        Part("portal", settings.base_port + 2, (PORTAL,)),
    ]
    for i, agency in enumerate(AGENCIES.values()):
        out.append(Part(agency.system, settings.base_port + 10 + i, tuple(agency.members(codes))))
    out.append(Part("console", settings.base_port + 3, ()))
    return out


def part(settings: Settings, name: str) -> Part:
    for p in parts(settings):
        if p.name == name:
            return p
    raise KeyError(f"no part named {name!r}; parts are {', '.join(p.name for p in parts(settings))}")


def municipalities() -> tuple[str, ...]:
    """The municipalities this mesh serves (``PUBLICMESH_MUNICIPALITIES``, or the demo ones)."""
    return served_codes()
