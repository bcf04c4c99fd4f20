"""Starts parts as separate processes, waits until each answers, restarts one that dies (with backoff) while the
others keep serving, and stops them all together."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from publicmesh.runtime import proxy
from publicmesh.runtime.topology import Part, processes
from publicmesh.settings import Settings
from publicmesh.storage.private import private_dir

# Memory the parts free goes back to the system instead of waiting in per-thread arenas (glibc) or in Polars'
# allocator (jemalloc) for its next use: a part's peak is then what it holds at once. Set where not set already.
ALLOCATORS = {"MALLOC_ARENA_MAX": "2", "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """When a dead part is started again: after ``first_s``, doubling to ``max_s``; back to ``first_s`` once a part
    has stayed up ``stable_s``; given up after ``give_up_after`` deaths in a row, each within ``stable_s`` of its
    start."""

    first_s: float = 0.5
    max_s: float = 30.0
    stable_s: float = 60.0
    give_up_after: int = 10


@dataclass
class _Restarts:
    started: float
    delay: float
    failures: int = 0
    due: float | None = None  # when the dead part starts again
    process: subprocess.Popen | None = None


class Supervisor:
    def __init__(self, settings: Settings, env: dict[str, str] | None = None, log_dir: Path | None = None):
        self.settings = settings
        self.env = {
            **ALLOCATORS,
            **os.environ,
            **(env or {}),
            "PUBLICMESH_DATA_DIR": str(settings.data_dir),
            "PUBLICMESH_DATABASE_PREFIX": settings.database_prefix,
            "PUBLICMESH_BASE_PORT": str(settings.base_port),
            "PUBLICMESH_HOST": settings.host,
            "PUBLICMESH_REPLICAS": str(settings.replicas),
        }
        if settings.database_url:
            self.env["PUBLICMESH_DATABASE_URL"] = settings.database_url
        if settings.events_url:
            self.env["PUBLICMESH_EVENTS_URL"] = settings.events_url
            self.env["PUBLICMESH_EVENTS_STREAM"] = settings.events_stream
            self.env["PUBLICMESH_EVENTS_DUPLICATE_WINDOW"] = str(settings.events_duplicate_window_s)
        self.log_dir = log_dir or settings.data_dir / "logs"
        self.processes: dict[str, subprocess.Popen] = {}
        self.given_up: set[str] = set()
        self.restarts: dict[str, int] = {}  # how many times each part was started again
        self._spawned: dict[str, float] = {}  # when each part's process was started (monotonic)
        self._lock = threading.RLock()  # the watcher and the caller both start and remove processes
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self, names: list[str] | None = None, timeout_s: float = 60) -> None:
        private_dir(self.log_dir)
        for p in processes(self.settings):
            if names is None or p.name in names:
                self.start_part(p, timeout_s)

    def start_part(self, p: Part, timeout_s: float = 60) -> None:
        self._spawn(p.name)
        self.wait_ready(p, timeout_s)

    def _spawn(self, name: str) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)  # (an operator may have cleared the logs meanwhile)
        with open(self.log_dir / f"{name}.log", "ab") as output, self._lock:
            process = subprocess.Popen(
                proxy.command(self.settings)
                if name == "haproxy"
                else [sys.executable, "-m", "publicmesh.runtime.serve", name],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            self.processes[name] = process
            self._spawned[name] = time.monotonic()
        return process

    def watch(self, backoff: Backoff | None = None, interval_s: float = 0.2) -> None:
        """Restarts a part that exits, in a thread of its own, until ``stop``; a part taken away with ``kill`` is not
        restarted."""
        if self._watcher is None:
            self._stopping.clear()
            self._watcher = threading.Thread(
                target=self.supervise, args=(backoff or Backoff(), interval_s), name="supervisor", daemon=True
            )
            self._watcher.start()

    def supervise(self, backoff: Backoff, interval_s: float = 0.2) -> None:
        """Restarts each part that exits, with ``backoff``, until ``stop`` (or a part is given up on)."""
        now = time.monotonic()
        state = {name: _Restarts(self._spawned.get(name, now), backoff.first_s) for name in self.processes}
        while not self._stopping.wait(interval_s):
            now = time.monotonic()
            with self._lock:
                running = list(self.processes.items())
            for name, process in running:
                restarts = state.setdefault(name, _Restarts(now, backoff.first_s))
                try:
                    self._check(name, process, restarts, backoff, now)
                except Exception:  # the watcher itself must not die: the other parts still need it
                    log.exception("supervisor: checking %s failed", name)

    def _check(self, name: str, process: subprocess.Popen, restarts: _Restarts, backoff: Backoff, now: float) -> None:
        if restarts.process is not process:  # started here, or by the caller (start_part)
            if restarts.process is not None and restarts.due is not None:
                restarts.started, restarts.due = now, None
            restarts.process = process
        if process.poll() is None:
            return
        with self._lock:
            if self.processes.get(name) is not process:
                return  # taken away with kill
        if restarts.due is None:  # its death, seen for the first time
            lived = now - restarts.started
            if lived >= backoff.stable_s:
                restarts.delay, restarts.failures = backoff.first_s, 0
            restarts.failures += 1
            if restarts.failures >= backoff.give_up_after:
                with self._lock:
                    if self.processes.get(name) is process:
                        del self.processes[name]
                self.given_up.add(name)
                self._note(
                    name,
                    logging.ERROR,
                    f"{name} exited with {process.returncode} {restarts.failures} times in a row, each "
                    f"within {backoff.stable_s:.0f} s of starting: given up, not restarted again; "
                    f"the other parts keep serving",
                )
                return
            restarts.due = now + restarts.delay
            self._note(
                name,
                logging.WARNING,
                f"{name} exited with {process.returncode} after {lived:.1f} s; "
                f"restarting it in {restarts.delay:.1f} s (death {restarts.failures} in a row)",
            )
            restarts.delay = min(restarts.delay * 2, backoff.max_s)
        elif now >= restarts.due:
            with self._lock:
                if self._stopping.is_set() or self.processes.get(name) is not process:
                    return  # stopping, or taken away (kill) or started by the caller meanwhile
                try:
                    started = self._spawn(name)
                except OSError as exc:  # tried again later, as if it had died at once
                    restarts.due = now + restarts.delay
                    restarts.delay = min(restarts.delay * 2, backoff.max_s)
                    log.error(
                        "%s could not be started again (%s); trying again in %.1f s", name, exc, restarts.due - now
                    )
                    return
            restarts.started, restarts.due, restarts.process = time.monotonic(), None, started
            self.restarts[name] = self.restarts.get(name, 0) + 1
            self._note(name, logging.WARNING, f"{name} restarted (pid {started.pid})")

    def _note(self, name: str, level: int, message: str) -> None:
        """Logged, and written in the part's own log, where its last words are."""
        log.log(level, message)
        try:
            with open(self.log_dir / f"{name}.log", "a", encoding="utf-8") as part_log:
                part_log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} supervisor: {message}\n")
        except OSError:
            log.warning("supervisor: cannot write to %s's log", name)

    def wait_ready(self, p: Part, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            process = self.processes[p.name]
            if process.poll() is not None:
                tail = (self.log_dir / f"{p.name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{p.name} exited with {process.returncode}:\n{tail}")
            try:
                # ready, not only alive: its store answers and its keys are loaded
                if httpx.get(p.url(self.settings) + "/readyz", timeout=3).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{p.name} did not answer on {p.url(self.settings)} within {timeout_s} s")

    def kill(self, name: str) -> None:
        """kill -9 one part (resilience tests); it is not restarted."""
        with self._lock:
            process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def unwatch(self) -> None:
        """Parts that exit from now on stay down."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None

    def stop(self) -> None:
        self.unwatch()
        for process in reversed(list(self.processes.values())):
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.stop()
