"""The services bench counts the publish's memory: a process's high-water mark can be set back after seeding."""

import os
import re
from pathlib import Path

from publicmesh.bench.services import peak_rss_mb, peak_rss_sum_mb, reset_peak_rss


def _rss_mb() -> float:
    return int(re.search(r"RssAnon:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024


def test_the_high_water_mark_is_set_back_to_the_current_size():
    block = bytearray(os.urandom(1)) * (300 << 20)  # 300 MiB touched, then let go
    del block
    before = peak_rss_mb([os.getpid()])
    assert before > _rss_mb() + 250
    assert reset_peak_rss()
    assert peak_rss_mb([os.getpid()]) < before - 250


def test_the_peak_counts_shared_library_pages_once_and_each_process_own_memory_in_full():
    import subprocess
    import sys

    # two processes that map the same libraries (polars, pyarrow) and each touch 200 MiB of their own
    code = (
        "import polars, pyarrow, sys; b = bytearray(200 << 20); b[::4096] = b'x' * len(b[::4096]); "
        "print(1, flush=True); sys.stdin.read()"
    )
    children = [
        subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(2)
    ]
    try:
        for child in children:
            child.stdout.readline()
        pids = [child.pid for child in children]
        counted_once, counted_in_each = peak_rss_mb(pids), peak_rss_sum_mb(pids)
        assert counted_once >= 400  # both processes' own 200 MiB, in full
        libraries = counted_in_each - counted_once  # what the sum of high-water marks counted twice
        assert libraries > 20
        assert counted_once < counted_in_each
    finally:
        for child in children:
            child.stdin.close()
            child.wait()
