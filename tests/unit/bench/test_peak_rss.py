"""The services bench counts the publish's memory: a process's high-water mark can be set back after seeding."""

import os
import re
from pathlib import Path

from publicmesh.bench.services import peak_rss_mb, reset_peak_rss


def _rss_mb() -> float:
    return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024


def test_the_high_water_mark_is_set_back_to_the_current_size():
    block = bytearray(os.urandom(1)) * (300 << 20)  # 300 MiB touched, then let go
    del block
    before = peak_rss_mb([os.getpid()])
    assert before > _rss_mb() + 250
    assert reset_peak_rss()
    assert peak_rss_mb([os.getpid()]) < before - 250
