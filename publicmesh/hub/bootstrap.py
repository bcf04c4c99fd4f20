"""The hub wired in one place: every dependency built from the settings, started and stopped with the app."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from cryptography import x509
from fastapi import FastAPI

from publicmesh.audit import AsyncAuditAppender, AuditLog, load_or_create_audit_key
from publicmesh.events import EventTransport, StoreTransport
from publicmesh.events.jetstream import JetStreamTransport
from publicmesh.hub.app import FastPath, create_app
from publicmesh.hub.catalog import Catalog
from publicmesh.hub.deps import HubDeps
from publicmesh.hub.events import EventRouter
from publicmesh.hub.exchange import Exchange
from publicmesh.hub.http import SignedHttp
from publicmesh.hub.numbers_client import NumbersClient
from publicmesh.hub.registry import Directory
from publicmesh.hub.rules import RuleBook
from publicmesh.hub.witnessing import Witnesses
from publicmesh.protocol.ca import read_private_key
from publicmesh.protocol.members import HUB, NUMBERS
from publicmesh.protocol.nonces import NonceRecorder
from publicmesh.protocol.outbound import Outbound
from publicmesh.protocol.signatures import Signer, Verifier
from publicmesh.protocol.trust import certificate_header
from publicmesh.settings import Settings, get_settings
from publicmesh.storage import engine_for
from publicmesh.storage.nonces import SqlNonceStore


def bootstrap(
    settings: Settings | None = None,
    numbers_url: str | None = None,
    *,
    route_events: bool = True,
    witness_urls: list[str] | None = None,
) -> FastPath:
    """The hub's ASGI app, its dependencies built from ``settings``, the number service's address and the witnesses'
    (which cosign its audit checkpoints)."""
    settings = settings or get_settings()
    numbers_url = numbers_url or f"http://{settings.host}:{settings.base_port}"
    return create_app(build(settings, numbers_url, route_events=route_events, witness_urls=witness_urls), lifespan)


def build(
    settings: Settings, numbers_url: str, *, route_events: bool = True, witness_urls: list[str] | None = None
) -> HubDeps:
    """Every part of the hub, wired; nothing runs until the lifespan starts it."""
    keys = settings.keys_dir
    ca = x509.load_pem_x509_certificate((keys / "mesh-ca.pem").read_bytes())
    engine = engine_for("hub", settings)
    directory = Directory(engine, ca)
    rules = RuleBook.load()
    signer = Signer(str(HUB), read_private_key(keys / "members" / f"{HUB.file_stem}.key"))
    hub_pem = (keys / "members" / f"{HUB.file_stem}.pem").read_text()
    outbound = Outbound(
        signer, certificate_header(hub_pem), Verifier(directory.trust.key, 300), settings.provider_timeout_s
    )
    audit_log = AuditLog(
        engine_for("audit", settings), load_or_create_audit_key(keys), keeps_trees_over=settings.hub_keeps_over
    )
    audit = AsyncAuditAppender(audit_log)
    catalog = Catalog(directory, rules, settings.provider_timeout_s)
    numbers = NumbersClient(outbound, numbers_url, str(NUMBERS), settings.hub_keeps_over)
    exchange = Exchange(directory, rules, catalog, numbers, outbound, audit)
    return HubDeps(
        settings=settings,
        # Replays are refused across restarts: the nonces of the validity window are kept in the hub's store.
        http=SignedHttp(
            signer,
            Verifier(directory.trust.key, settings.signature_max_age_s),
            NonceRecorder(SqlNonceStore(engine, settings.signature_max_age_s)),
        ),
        directory=directory,
        rules=rules,
        catalog=catalog,
        exchange=exchange,
        audit_log=audit_log,
        audit=audit,
        outbound=outbound,
        events=EventRouter(exchange, engine, event_transport(settings)) if route_events else None,
        witnesses=Witnesses(audit_log, witness_urls, settings.witness_interval_s) if witness_urls else None,
    )


def event_transport(settings: Settings) -> EventTransport:
    """JetStream when the settings name a NATS server, else the embedded transport.

    The embedded one has a store of its own, as a broker would: events carry agencies' pseudonyms."""
    if settings.events_url.startswith(("nats://", "tls://")):
        return JetStreamTransport(
            settings.events_url, stream=settings.events_stream, duplicate_window=settings.events_duplicate_window_s
        )
    if settings.events_url:
        raise ValueError(f"PUBLICMESH_EVENTS_URL must be a nats:// URL or empty, not {settings.events_url!r}")
    return StoreTransport(engine_for("events", settings))


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Starts the hub's outbound calls, its audit writer, the catalog's warm-up and the event routing; stops them."""
    hub: HubDeps = app.state.hub
    await hub.outbound.start()
    await hub.audit.start()
    tasks = [asyncio.create_task(hub.catalog.warm())]
    if hub.events:
        tasks.append(asyncio.create_task(hub.events.run()))
    if hub.witnesses:
        tasks.append(asyncio.create_task(hub.witnesses.run()))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        if hub.events and isinstance(hub.events.transport, JetStreamTransport):
            await hub.events.transport.close()
        await hub.audit.close()
        await hub.outbound.close()
        if hub.http.nonces is not None:
            hub.http.nonces.close()
