"""Starts parts as separate processes, waits until each answers, and stops them all together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from publicmesh.runtime.topology import Part, parts
from publicmesh.settings import Settings
from publicmesh.storage.private import private_dir

# Memory the parts free goes back to the system instead of waiting in per-thread arenas (glibc) or in Polars'
# allocator (jemalloc) for its next use: a part's peak is then what it holds at once. Set where not set already.
ALLOCATORS = {"MALLOC_ARENA_MAX": "2", "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0"}


class Supervisor:
    def __init__(self, settings: Settings, env: dict[str, str] | None = None, log_dir: Path | None = None):
        self.settings = settings
        self.env = {
            **ALLOCATORS,
            **os.environ,
            **(env or {}),
            "PUBLICMESH_DATA_DIR": str(settings.data_dir),
            "PUBLICMESH_BASE_PORT": str(settings.base_port),
            "PUBLICMESH_HOST": settings.host,
        }
        if settings.database_url:
            self.env["PUBLICMESH_DATABASE_URL"] = settings.database_url
        self.log_dir = log_dir or settings.data_dir / "logs"
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, names: list[str] | None = None, timeout_s: float = 60) -> None:
        private_dir(self.log_dir)
        for p in parts(self.settings):
            if names is None or p.name in names:
                self.start_part(p, timeout_s)

    def start_part(self, p: Part, timeout_s: float = 60) -> None:
        log = open(self.log_dir / f"{p.name}.log", "ab")
        self.processes[p.name] = subprocess.Popen(
            [sys.executable, "-m", "publicmesh.runtime.serve", p.name],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready(p, timeout_s)

    def wait_ready(self, p: Part, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            process = self.processes[p.name]
            if process.poll() is not None:
                tail = (self.log_dir / f"{p.name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{p.name} exited with {process.returncode}:\n{tail}")
            try:
                if httpx.get(p.url(self.settings) + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{p.name} did not answer on {p.url(self.settings)} within {timeout_s} s")

    def kill(self, name: str) -> None:
        """kill -9 one part (resilience tests)."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
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
