"""What the operator's `publicmesh services publish FILE` runs: the publishing pipeline on this machine's mesh,
with a progress bar and a summary by municipality."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.table import Table
from sqlalchemy import Engine

from publicmesh.population.places import served_codes
from publicmesh.protocol.client import MeshClient
from publicmesh.services.jobs import StoreJobs
from publicmesh.services.publish import SERVICES_MEMBER, Summary, publish
from publicmesh.services.publish_queue import Worker, publish_queued
from publicmesh.settings import Settings
from publicmesh.storage import engine_for


@contextmanager
def _as_services(settings: Settings) -> Iterator[tuple[Engine, MeshClient]]:
    """The services part's store and a client of the hub as its member (long calls: a publish's may take minutes)."""
    engine = engine_for("services", settings)
    client = MeshClient.for_member(settings, SERVICES_MEMBER, settings.hub_url)
    client.timeout_s = 600
    try:
        yield engine, client
    finally:
        engine.dispose()


def publish_file(settings: Settings, path: Path, progress=None, **options) -> Summary:
    with _as_services(settings) as (engine, client):
        municipalities, payouts = list(served_codes(settings)), settings.data_dir / "payouts"
        return publish(engine, client, path, municipalities, payouts, progress=progress, **options)


def publish_file_queued(settings: Settings, path: Path, progress=None, **options) -> Summary:
    """The publish as one job per municipality for the publisher workers (`publicmesh services worker`)."""
    with _as_services(settings) as (engine, client):
        municipalities, payouts = list(served_codes(settings)), settings.data_dir / "payouts"
        return publish_queued(
            engine, client, StoreJobs(engine), path, municipalities, payouts, progress=progress, **options
        )


def run_worker(settings: Settings, until_idle: bool = False) -> int:
    """A publisher worker on this machine's mesh: takes municipalities' jobs until stopped (or none is left)."""
    with _as_services(settings) as (engine, client):
        return Worker(engine, client, StoreJobs(engine), lease_s=settings.publish_lease_s).run(until_idle=until_idle)


def print_summary(summary: Summary, console) -> None:
    table = Table(title=f"{summary.service} v{summary.version}")
    for column in ("municipality", "residents", "eligible", "total (¥)"):
        table.add_column(column, justify="right")
    for code, row in summary.by_municipality.items():
        table.add_row(code, f"{row['residents']:,}", f"{row['eligible']:,}", f"{row['total_yen']:,}")
    table.add_row("all", f"{summary.residents:,}", f"{summary.eligible:,}", f"{summary.total_yen:,}", style="bold")
    console.print(table)
    console.print(
        f"new offers and notices: {summary.new_offers:,}; applied by prior intent: "
        f"{summary.prior_intent_applications:,}; paid: {summary.payout.get('paid', 0):,} "
        f"(¥{summary.payout.get('paid_yen', 0):,}) in {len(summary.payout.get('files', []))} files; "
        f"without an account: {summary.payout.get('without_account', 0):,}"
    )
    if summary.resumed.get("batches"):
        console.print(
            f"finished what a stopped publish left: {summary.resumed['offers']:,} offers announced in "
            f"{summary.resumed['batches']:,} municipality batches"
        )
    console.print("seconds by phase: " + ", ".join(f"{k} {v:.2f}" for k, v in summary.phases.items()))
    console.print(
        "of which written beside the next municipality: "
        + ", ".join(f"{k} {v:.2f}" for k, v in summary.background.items())
    )
