#!/usr/bin/env bash
# The RLAIF-V study of docs/rlaifv.md: conditions x seeds 0, 1, 2, two pipelines at a time (one thread each).
#   bash experiments/rlaifv/run_study.sh [OUT_DIR] [CONDITION ...]
# Conditions: dnc (divide-and-conquer with the shapes labeler VLM, 3 rounds of 250 instructions), self_reward
# (the same labeler judges whole responses at once, 3 rounds), one_round (divide-and-conquer, one round of the
# same 750 instructions), oracle (exact verdicts from the scene, 3 rounds: the upper bound). Default: all four.
set -uo pipefail
OUT=${1:-outputs/rlaifv_study}
shift || true
CONDITIONS=("${@:-dnc self_reward one_round oracle}")
declare -A EXTRA=([dnc]="rounds=3" [self_reward]="rounds=3 splitter=whole_response"
                  [one_round]="rounds=1 instructions.per_round=750" [oracle]="rounds=3 labeler=oracle")
COMMON=(instructions.per_round=250 sampling.num_samples=4 train.epochs=2
        'train.overrides=["objective=dpo","reference=precomputed","optimizer.lr=1e-5","scheduler.num_warmup_steps=10","callbacks.progress_bar=null","task_name=rlaifv_round","eval.pope_samplings=[]"]')
run() {  # name seed
  local name=$1 seed=$2
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 vlmalign-rlaifv seed="$seed" "${COMMON[@]}" ${EXTRA[$name]} hydra.run.dir="$OUT/$name/seed$seed" \
    > "$OUT/$name-seed$seed.log" 2>&1 || echo "$name seed $seed failed: see $OUT/$name-seed$seed.log"
}
mkdir -p "$OUT"
for seed in 0 1 2; do
  for name in ${CONDITIONS[*]}; do
    while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n; done  # two at a time
    run "$name" "$seed" &
  done
done
wait
args=()
for name in ${CONDITIONS[*]}; do args+=("$name=$OUT/$name/seed0,$OUT/$name/seed1,$OUT/$name/seed2"); done
python experiments/rlaifv/summarize.py "${args[@]}"
