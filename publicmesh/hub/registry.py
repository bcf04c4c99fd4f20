"""The member registry (メンバー登録): each member's address, certificate and status, in the hub's own store."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy import Column, Engine, MetaData, String, Table, Text, select

from publicmesh.protocol.ca import UntrustedCertificate, verify_member_certificate
from publicmesh.protocol.members import MemberId
from publicmesh.protocol.trust import TrustStore
from publicmesh.storage import upsert

log = logging.getLogger(__name__)
metadata = MetaData()
members = Table(
    "members",
    metadata,
    Column("member_id", String(64), primary_key=True),
    Column("base_url", String(200), nullable=False),
    Column("certificate_pem", Text, nullable=False),
    Column("status", String(16), nullable=False, default="active"),  # active, suspended
    Column("title_ja", String(100), nullable=False, default=""),
    Column("title_en", String(100), nullable=False, default=""),
)


@dataclass(frozen=True)
class Member:
    id: MemberId
    base_url: str
    certificate_pem: str
    status: str
    title_ja: str
    title_en: str

    @property
    def active(self) -> bool:
        return self.status == "active"


def register(
    engine: Engine,
    member: MemberId,
    base_url: str,
    certificate_pem: str,
    ca: x509.Certificate,
    title_ja: str = "",
    title_en: str = "",
) -> None:
    """Add or update a member after checking that the mesh CA certified its key for that member id."""
    certified = verify_member_certificate(x509.load_pem_x509_certificate(certificate_pem.encode()), ca)
    if certified != member:
        raise ValueError(f"the certificate is for {certified}, not {member}")
    metadata.create_all(engine)
    values = dict(
        member_id=str(member),
        base_url=base_url,
        certificate_pem=certificate_pem,
        status="active",
        title_ja=title_ja,
        title_en=title_en,
    )
    with engine.begin() as conn:
        upsert(conn, members, values, key=["member_id"], update=[c for c in values if c != "member_id"])


class Directory:
    """The registry as the hub uses it on every request: in memory, with the trusted keys."""

    def __init__(self, engine: Engine, ca: x509.Certificate):
        self._engine = engine
        self.trust = TrustStore(ca)
        self.members: dict[str, Member] = {}
        metadata.create_all(engine)
        self.reload()

    @property
    def engine(self) -> Engine:
        """The hub's store, which holds the members."""
        return self._engine

    def reload(self) -> None:
        with self._engine.connect() as conn:
            rows = conn.execute(select(members)).mappings().all()
        loaded = {}
        for r in rows:
            member = Member(
                MemberId.parse(r["member_id"]),
                r["base_url"],
                r["certificate_pem"],
                r["status"],
                r["title_ja"],
                r["title_en"],
            )
            try:
                if member.active:
                    self.trust.add_pem(member.certificate_pem)
                else:
                    self.trust.remove(r["member_id"])
            except UntrustedCertificate as exc:  # e.g. certified by a previous CA: not a member any more
                log.warning("member %s ignored: %s", r["member_id"], exc)
                continue
            loaded[r["member_id"]] = member
        self.members = loaded

    def get(self, member: MemberId | str) -> Member | None:
        found = self.members.get(str(member))
        return found if found and found.active else None
