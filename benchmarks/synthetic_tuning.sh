#!/usr/bin/env bash
# RoHyDR variants on the synthetic board, compared on VALID only (TEST is never read): the measurements behind
# "Tuning on VALID" in docs/benchmarks.md. Each variant is the board's RoHyDR recipe (quickstart.yaml with the
# board's 20 recovery epochs) changed in one place; RoHyDR as it stands and the baselines are the board's own
# cells (run them first: imrec bench run benchmarks/synthetic.yaml).
#   bash benchmarks/synthetic_tuning.sh            # ≈ 15 min per variant and seed on one core
# Runs go to runs/tuning/<variant>/; a variant whose seed has finished is not re-run (delete its folder to redo).
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=(train.phases.recover.epochs=20 train.phases.recover.early_stop=8)
SEEDS=(1111 1112 1113)
RATES=(0.3 0.4 0.5 0.6 0.6666666666666666)

run() {  # variant recipe overrides...
  local variant=$1 recipe=$2; shift 2
  for s in "${SEEDS[@]}"; do
    if ! compgen -G "runs/tuning/$variant/seed-$s/*/*/seeds/$s/test.json" > /dev/null; then
      imrec run "$recipe" "$@" "seeds=[$s]" "output_dir=runs/tuning/$variant/seed-$s" --quiet
    fi
  done
}
run residual_mr recipes/quickstart.yaml "${BUDGET[@]}" model.aligner.residual=true
run normalized_rec recipes/quickstart.yaml "${BUDGET[@]}" model.recoverer.reconstruction_scale=normalized
run warmup recipes/variants/rohydr_warmup_synthetic.yaml
run task_to_recoverer recipes/quickstart.yaml "${BUDGET[@]}" \
  "train.phases.recover.steps.task.update=[recoverer, fuser, aligner.reconstructor, head]"

# VALID MAE at MR 0.3–2/3 (mean over those rates per seed, then over seeds) and VALID recovery MSE per modality
# at MR 0.3, for the variants and for the synthetic board's baseline cells.
dirs=(runs/bench/synthetic/RoHyDR/seed-* runs/tuning/*/seed-*/*/* runs/bench/synthetic/zero_fill/seed-* runs/bench/synthetic/mean_fill/seed-*
      runs/bench/synthetic/regression/seed-* runs/bench/synthetic/imder/seed-*)
for d in "${dirs[@]}"; do
  [ -f "$d/recipe.yaml" ] || continue
  echo "$d $(imrec eval "$d" --rates "${RATES[@]}" --json | python -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["per_seed"]))')"
done | python -c '
import json, sys, statistics as st
rows = {}
for line in sys.stdin:
    d, js = line.split(" ", 1)
    parts = d.split("/")
    name = parts[2] if parts[1] == "tuning" else parts[3]
    for seed, conds in json.loads(js).items():
        maes = [c["mae"] for c in conds.values()]
        rec = conds["random/mr=0.30"]
        rows.setdefault(name, []).append((int(seed), st.mean(maes), [rec.get(f"recovery_mse/{m}") for m in ("text", "audio", "vision")]))
print("variant".ljust(18), "VALID MAE, MR 0.3-2/3, per seed".ljust(42), "mean".rjust(7), "  recovery MSE text/audio/vision @0.3 (seed mean)")
for name, r in rows.items():
    r.sort()
    per = "  ".join(f"{s}: {m:.4f}" for s, m, _ in r)
    rec = [st.mean(x[2][i] for x in r) if all(x[2][i] is not None for x in r) else float("nan") for i in range(3)]
    print(name.ljust(18), per.ljust(42), f"{st.mean(m for _, m, _ in r):7.4f}", "  " + " / ".join(f"{v:.3f}" for v in rec))
'
