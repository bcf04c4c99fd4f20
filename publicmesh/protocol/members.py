"""Mesh members: every agency system is ``CLASS/CODE/SYSTEM`` with a key certified by the mesh CA."""

from __future__ import annotations

import re
from dataclasses import dataclass

_MEMBER = re.compile(r"^(GOV|MUNI|MESH|COM)/([0-9A-Za-z\-]{1,16})/([a-z][a-z0-9\-]{0,47})$")


class InvalidMemberId(ValueError):
    """A member id that is not CLASS/CODE/SYSTEM."""


@dataclass(frozen=True, order=True)
class MemberId:
    """A member of the mesh, e.g. ``MUNI/012084/resident-registry`` (012084 is Kitami)."""

    member_class: str
    code: str
    system: str

    @classmethod
    def parse(cls, text: str) -> MemberId:
        match = _MEMBER.match(text or "")
        if not match:
            raise InvalidMemberId(f"{text!r} is not a member id of the form CLASS/CODE/SYSTEM")
        return cls(*match.groups())

    def __str__(self) -> str:
        return f"{self.member_class}/{self.code}/{self.system}"

    @property
    def file_stem(self) -> str:
        return f"{self.member_class}_{self.code}_{self.system}"

    @property
    def pseudonym_domain(self) -> str:
        """Pseudonyms are per agency system: a municipality's tenant shares its system's domain."""
        return self.system


HUB = MemberId("MESH", "0000000", "hub")
NUMBERS = MemberId("MESH", "0000000", "numbers")  # 番号管理: the number service, the hub's only caller
PORTAL = MemberId("GOV", "digital", "portal")  # マイナポータル: the resident-facing system
AUDIT_DOMAIN = "audit"
