"""The supervisor's restarts: a part that keeps dying at once is restarted with backoff, then given up on."""

from __future__ import annotations

import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

from publicmesh.runtime.supervisor import Backoff, Supervisor
from publicmesh.runtime.topology import Part
from publicmesh.settings import Settings


def test_a_part_that_keeps_dying_is_restarted_with_backoff_then_given_up(tmp_path, caplog):
    supervisor = Supervisor(Settings(data_dir=tmp_path, base_port=15790))
    supervisor.log_dir.mkdir(parents=True)
    supervisor._spawn("no-such-part")  # serve exits at once: no part has that name
    started = time.monotonic()
    supervisor.watch(Backoff(first_s=0.2, max_s=0.4, stable_s=60, give_up_after=4), interval_s=0.05)
    try:
        deadline = time.monotonic() + 60
        while "no-such-part" not in supervisor.given_up and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        supervisor.stop()
    assert supervisor.given_up == {"no-such-part"} and supervisor.restarts["no-such-part"] == 3
    assert time.monotonic() - started >= 0.2 + 0.4 + 0.4  # the waits between the four deaths
    assert "no-such-part" not in supervisor.processes
    log = (supervisor.log_dir / "no-such-part.log").read_text()
    assert log.count("restarting it in") == 3 and "restarting it in 0.4 s (death 2 in a row)" in log
    assert "given up, not restarted again" in log


def test_the_watcher_survives_a_log_folder_removed_under_it(tmp_path):
    supervisor = Supervisor(Settings(data_dir=tmp_path, base_port=15790))
    supervisor.log_dir.mkdir(parents=True)
    supervisor._spawn("no-such-part")
    shutil.rmtree(supervisor.log_dir)  # its first death cannot be written in its log
    supervisor.watch(Backoff(first_s=0.1, max_s=0.1, give_up_after=3), interval_s=0.05)
    try:
        deadline = time.monotonic() + 60
        while "no-such-part" not in supervisor.given_up and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        supervisor.stop()
    assert supervisor.given_up == {"no-such-part"} and supervisor.restarts["no-such-part"] == 2


def test_a_part_is_waited_for_until_ready_not_only_alive(tmp_path):
    asked: list[str] = []

    class Part503(BaseHTTPRequestHandler):
        """Alive at once; ready from the third time it is asked (its store still opening before)."""

        def do_GET(self):
            asked.append(self.path)
            ready = self.path == "/healthz" or asked.count("/readyz") >= 3
            self.send_response(200 if ready else 503)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Part503)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    supervisor = Supervisor(Settings(data_dir=tmp_path))
    supervisor.processes["witness"] = SimpleNamespace(poll=lambda: None)  # a process that runs
    try:
        supervisor.wait_ready(Part("witness", server.server_address[1], ()), timeout_s=10)
    finally:
        server.shutdown()
    assert asked.count("/readyz") == 3
