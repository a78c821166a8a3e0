#!/usr/bin/env bash
# Re-run both leaderboards from scratch (70 cells: 2 boards × 7 methods × 5 seeds) with two worker processes,
# then regenerate benchmarks/results/*.jsonl, LEADERBOARD.md and the plots, and print how long it took.
#   benchmarks/run_leaderboards.sh            from scratch (deletes runs/bench/{mosi_bclstm,handwritten})
#   benchmarks/run_leaderboards.sh --resume   keep finished cells, resume interrupted ones
# Needs the data: `imrec data get mosi-bclstm && imrec data get handwritten` (or IMREC_DATA_DIR set).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
if [ "${1:-}" != "--resume" ]; then
    rm -rf runs/bench/mosi_bclstm runs/bench/handwritten
fi
SECONDS=0
status=0
imrec bench run benchmarks/mosi_bclstm.yaml benchmarks/handwritten.yaml --jobs 2 --format markdown || status=$?
echo "leaderboards: $((SECONDS / 60)) min $((SECONDS % 60)) s wall time with --jobs 2 (exit status $status)"
exit $status
