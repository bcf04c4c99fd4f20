#!/usr/bin/env bash
# A/B benchmarks in one run: the code at REF against this checkout, alternated ROUNDS times, each run on fresh
# stores and ports of its own. Prints a table of medians and ranges (scripts/ab_table.py).
# Usage: bash scripts/ab-bench.sh REF [ROUNDS] [OUTDIR]      e.g. bash scripts/ab-bench.sh f23ff9f 3
set -euo pipefail
REF=${1:?usage: ab-bench.sh REF [ROUNDS] [OUTDIR]}; ROUNDS=${2:-3}; OUT=${3:-$(mktemp -d)}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=$HERE/.venv/bin/python
BASE=$(mktemp -d)/base
git -C "$HERE" worktree add -q --detach "$BASE" "$REF"
trap 'git -C "$HERE" worktree remove --force "$BASE"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  for side in base main; do
    dir=$([ $side = base ] && echo "$BASE" || echo "$HERE"); port=$([ $side = base ] && echo 14100 || echo 14300)
    for bench in exchange services; do
      data=$(mktemp -d)
      args="exchange --json"
      [ $bench = services ] && args="services --residents 1000000 --no-browser --no-openfisca --json"
      (cd "$dir" && PYTHONPATH=$dir PUBLICMESH_DATA_DIR=$data PUBLICMESH_BASE_PORT=$port \
        timeout 900 "$PY" -m publicmesh.cli bench $args >"$OUT/$bench-$side-$r.json" 2>"$OUT/$bench-$side-$r.err") || true
      echo "$(date +%T) round $r $side $bench" >&2
      rm -rf "$data"
    done
  done
done
"$PY" "$HERE/scripts/ab_table.py" "$OUT"
