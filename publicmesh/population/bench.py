"""Time and peak memory of generating a population: `python -m publicmesh.population.bench 1000000`."""

from __future__ import annotations

import argparse
import json
import resource
import time

import pyarrow as pa

from publicmesh.population.generator import generate


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux: the high-water mark of this process so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench(residents: int, *, seed: int = 1, materialise: bool = True) -> dict:
    """Generate `residents` persons; return seconds and peak RSS (kept in one table, or streamed)."""
    started = time.perf_counter()
    rows = chunks = 0
    kept = []
    for chunk in generate(residents, seed=seed):
        rows += chunk.num_rows
        chunks += 1
        if materialise:
            kept.append(chunk)
    if materialise:
        table = pa.concat_tables(kept)
        rows = table.num_rows
    seconds = time.perf_counter() - started
    return {
        "residents": rows,
        "chunks": chunks,
        "materialised": materialise,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds) if seconds else None,
        "peak_rss_mib": round(_peak_rss_mib(), 1),
    }


def main() -> None:
    """Command-line entry: print the benchmark as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("residents", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stream", action="store_true", help="drop each chunk instead of keeping the table")
    args = parser.parse_args()
    print(json.dumps(bench(args.residents, seed=args.seed, materialise=not args.stream)))


if __name__ == "__main__":
    main()
