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
    """A part by name (its public address), or one of its replicas ("hub-2") or the proxy ("haproxy")."""
    for p in [*parts(settings), *processes(settings)]:
        if p.name == name:
            return p
    raise KeyError(f"no part named {name!r}; parts are {', '.join(p.name for p in processes(settings))}")


REPLICATED = ("hub", "portal")  # stateless: their state is in their stores (nonces, sessions, the audit log)
REPLICA_PORTS = {"hub": 100, "portal": 110}  # their replicas' ports: base port + this + the replica's index


def processes(settings: Settings) -> list[Part]:
    """What the supervisor starts, in order: the parts themselves, or, with ``settings.replicas`` > 1, the hub's
    and the portal's replicas ("hub-1", …) on ports of their own and HAProxy on the parts' ports in front of them.
    The replicas speak for the part's members, which the registry names at the part's (the proxy's) address."""
    if settings.replicas <= 1:
        return parts(settings)
    out: list[Part] = []
    for p in parts(settings):
        if p.name not in REPLICATED:
            out.append(p)
            continue
        out += [
            Part(f"{p.name}-{k}", settings.base_port + REPLICA_PORTS[p.name] + k, p.members)
            for k in range(1, settings.replicas + 1)
        ]
        if p.name == "hub":  # the proxy before the portal: a portal starting asks the hub through it
            out.append(Part("haproxy", p.port, ()))
    return out


def replica_of(name: str) -> str:
    """The part a process runs: "hub" for "hub-2", the name itself for any other."""
    base, _, index = name.rpartition("-")
    return base if base in REPLICATED and index.isdigit() else name


def municipalities() -> tuple[str, ...]:
    """The municipalities this mesh serves (``PUBLICMESH_MUNICIPALITIES``, or the demo ones)."""
    return served_codes()
