"""What makes an agency system: its tables, datasets, seeding, and the events it reacts to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, MetaData, Table

from publicmesh.protocol.members import MemberId
from publicmesh.provider.datasets import Dataset
from publicmesh.provider.messaging import messaging_tables

EventHandler = Callable[[Connection, "AgencyDefinition", str | None, dict], None]


@dataclass
class AgencyDefinition:
    """One kind of agency system, e.g. the resident registry (住民基本台帳) or national tax (国税)."""

    system: str
    title_ja: str
    title_en: str
    metadata: MetaData
    datasets: dict[str, Dataset]
    # (population chunk: polars.DataFrame, the agency's pseudonyms: Arrow strings) -> {table: rows to write} or None
    seed: Callable
    gov_code: str | None = None  # national agencies; municipal ones have one tenant per municipality
    handlers: dict[str, EventHandler] = field(default_factory=dict)
    # datasets that take submissions through the hub (write rules): (conn, tenant, subject, payload) -> answer
    writers: dict[str, Callable] = field(default_factory=dict)
    # started with the node, stopped with it: (engine, settings) -> an object with start() and stop()
    worker: Callable | None = None
    outbox: Table = field(init=False)
    inbox: Table = field(init=False)

    def __post_init__(self):
        self.outbox, self.inbox = messaging_tables(self.metadata)

    @property
    def municipal(self) -> bool:
        return self.gov_code is None

    @property
    def pseudonym_domain(self) -> str:
        return self.system

    def members(self, municipalities: Sequence[str]) -> list[MemberId]:
        if self.municipal:
            return [MemberId("MUNI", code, self.system) for code in municipalities]
        return [MemberId("GOV", self.gov_code, self.system)]

    def tenant_of(self, member: MemberId) -> str | None:
        """The municipality code that scopes every query of a municipal member."""
        return member.code if self.municipal else None
