"""Publishing a service from the console (サービスの公開): the definitions an operator can publish, checking a file
before anything happens, and one publication at a time in a background thread whose progress the page follows.

The publishing itself is the operator's ``publicmesh services publish`` (publicmesh.services.operator.publish_file);
each run is recorded in the services store with the operator who started it, so who published what stays known
after a restart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from publicmesh import safe_yaml
from publicmesh.services.definition import ServiceDefinition, definitions_dir, load_definition
from publicmesh.services.store import publications, utc_now
from publicmesh.storage import schema_once

log = logging.getLogger(__name__)
MAX_UPLOAD = 1_000_000  # bytes; a shipped definition is a few kilobytes
PHASES = ("evaluate", "notify")  # the phases publish() reports progress for, in order
Progress = Callable[[str, int, int], None]  # (phase, done, total)
PublishFile = Callable[[Path, Progress], object]  # returns a publicmesh.services.publish.Summary

metadata = MetaData()

runs = Table(
    "console_publish_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("service_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("title_ja", Text, nullable=False),
    Column("source", Text, nullable=False),  # the file the operator chose or uploaded
    Column("started_by", String(64), nullable=False),  # the operator's staff id
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),  # running, done, failed, interrupted (the console stopped)
    Column("summary", JSON),  # Summary.as_dict()
    Column("error", Text),
)

ensure_schema = schema_once(metadata)


@dataclass
class Run:
    """One publication started from the console."""

    id: str
    service_id: str
    version: int
    title_ja: str
    source: str
    started_by: str
    started_at: dt.datetime
    status: str = "running"
    finished_at: dt.datetime | None = None
    summary: dict | None = None
    error: str | None = None
    progress: dict[str, tuple[int, int]] = field(default_factory=dict)  # phase → (done, total), while it runs

    def progress_json(self) -> dict:
        return {"id": self.id, "status": self.status, "progress": {k: list(v) for k, v in self.progress.items()}}


class Busy(Exception):
    """A publication is already running (``run``): one at a time."""

    def __init__(self, run: Run | None):
        self.run = run
        super().__init__("a publication is already running")


def check(text: str, name: str) -> ServiceDefinition:
    """An uploaded definition through the loader; raises DefinitionError with line numbers. Always read as YAML
    text: a one-line upload must not be taken for a path on this machine."""
    return load_definition(text if text.endswith("\n") else text + "\n", name=name)


def packaged(folder: Path) -> dict[str, Path]:
    """The definition files an operator can choose, by file name without .yaml."""
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def catalogue(conn: Connection, folder: Path) -> list[dict]:
    """Each packaged definition with its title, version and its service's last publication (or None)."""
    last = {}
    for row in conn.execute(
        select(
            publications.c.service_id,
            publications.c.version,
            publications.c.published_at,
            publications.c.eligible,
            publications.c.total_yen,
        ).order_by(publications.c.version)
    ):
        last[row.service_id] = row  # the highest version wins
    listed = []
    for name, path in packaged(folder).items():
        try:
            doc = safe_yaml.load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            doc = None  # listed anyway: choosing it shows the loader's line-numbered problems
        doc = doc if isinstance(doc, dict) else {}
        title = doc.get("title") if isinstance(doc.get("title"), dict) else {}
        service_id = str(doc.get("id", name))
        listed.append(
            {
                "name": name,
                "service_id": service_id,
                "version": doc.get("version"),
                "title_ja": title.get("ja", name),
                "title_en": title.get("en", name),
                "last": last.get(service_id),
            }
        )
    return listed


def recent(conn: Connection, limit: int = 10) -> list[Run]:
    """The latest runs, newest first: what was published, by whom, and how it ended."""
    rows = conn.execute(select(runs).order_by(runs.c.started_at.desc()).limit(limit)).mappings()
    return [Run(**row) for row in rows]


class PublishProgress:
    """Prometheus collector: the progress of the console's current (or last) publication, read when scraped, so
    the publication itself does nothing more."""

    def __init__(self, publisher: Publisher):
        self.publisher = publisher

    def describe(self) -> list[GaugeMetricFamily]:
        return self._families()

    def collect(self) -> list[GaugeMetricFamily]:
        running, done, total = families = self._families()
        run = self.publisher.current
        running.add_metric([], 1 if run is not None and run.status == "running" else 0)
        for phase, (finished, of) in sorted((run.progress if run is not None else {}).items()):
            done.add_metric([phase], finished)
            total.add_metric([phase], of)
        return families

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily("publicmesh_publish_running", "1 while the console publishes a service"),
            GaugeMetricFamily(
                "publicmesh_publish_done_municipalities",
                "Municipalities done in the publication, by phase",
                labels=["phase"],
            ),
            GaugeMetricFamily(
                "publicmesh_publish_municipalities",
                "Municipalities to do in the publication, by phase",
                labels=["phase"],
            ),
        ]


class Publisher:
    """Runs ``publish_file(path, progress)`` in a background thread, one run at a time, recording each run."""

    def __init__(self, engine: Engine, publish_file: PublishFile, upload_dir: Path, folder: Path | None = None):
        self.engine, self._publish, self.upload_dir = engine, publish_file, upload_dir
        self.folder = folder or definitions_dir()
        self.current: Run | None = None
        self._lock = threading.Lock()
        ensure_schema(engine)
        with engine.begin() as conn:  # runs a stopped console never saw finish
            conn.execute(update(runs).where(runs.c.status == "running").values(status="interrupted"))

    def stage(self, text: str, definition: ServiceDefinition) -> Path:
        """An uploaded definition kept under a name of its content: the file published stays on disk."""
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        path = self.upload_dir / f"{definition.id}-v{definition.version}-{digest}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    def start(self, path: Path, definition: ServiceDefinition, source: str, username: str) -> Run:
        """Starts publishing a checked definition; raises Busy while another run is under way."""
        if not self._lock.acquire(blocking=False):
            raise Busy(self.current)
        try:
            run = Run(
                secrets.token_hex(8),
                definition.id,
                definition.version,
                definition.title.ja,
                source,
                username,
                utc_now(),
            )
            with self.engine.begin() as conn:
                conn.execute(
                    insert(runs).values(
                        id=run.id,
                        service_id=run.service_id,
                        version=run.version,
                        title_ja=run.title_ja,
                        source=run.source,
                        started_by=username,
                        started_at=run.started_at,
                        status=run.status,
                    )
                )
            self.current = run
            threading.Thread(target=self._work, args=(run, path), name=f"publish-{run.id}", daemon=True).start()
        except BaseException:
            self._lock.release()
            raise
        log.info(
            "console: %s started publishing %s v%s from %s (run %s)",
            username,
            run.service_id,
            run.version,
            source,
            run.id,
        )
        return run

    def get(self, run_id: str) -> Run | None:
        current = self.current
        if current is not None and current.id == run_id:
            return current
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
        return Run(**row) if row else None

    def _work(self, run: Run, path: Path) -> None:
        def progress(phase: str, done: int, total: int) -> None:
            run.progress[phase] = (done, total)

        summary, error, status = None, None, "done"
        try:
            summary = self._publish(path, progress).as_dict()
            log.info(
                "console: run %s by %s published %s v%s: %s eligible, ¥%s, %s new offers",
                run.id,
                run.started_by,
                run.service_id,
                run.version,
                f"{summary['eligible']:,}",
                f"{summary['total_yen']:,}",
                f"{summary['new_offers']:,}",
            )
        except Exception as exc:  # shown on the run's page; publishing again makes only what is missing
            log.exception("console: run %s by %s (publishing %s) failed", run.id, run.started_by, run.service_id)
            error, status = f"{type(exc).__name__}: {exc}", "failed"
        finished = utc_now()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    update(runs)
                    .where(runs.c.id == run.id)
                    .values(status=status, finished_at=finished, summary=summary, error=error)
                )
        except Exception:
            log.exception("console: run %s could not be recorded as %s", run.id, status)
        finally:
            run.summary, run.error, run.finished_at = summary, error, finished
            run.status = status  # last: a page that sees it finished finds the summary there
            self._lock.release()
