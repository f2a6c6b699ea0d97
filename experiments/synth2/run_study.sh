#!/usr/bin/env bash
# The Synth² study of docs/synth2.md: a limited real budget (1,000 shapes scenes), real-only vs real + synthetic
# at several synthetic shares of every batch, seeds 0, 1, 2; then the table.
#   bash experiments/synth2/run_study.sh [OUT_DIR]
# 1. the generator, trained on the same 1,000 real scenes (4 paraphrased captions each) against the SFT base's
#    vision tower, which the Synth² VLM keeps frozen;
# 2. "replace" (batch 16, a synthetic share r of it): r = 0, 0.25 | 0.5, 0.75;
#    "add" (16 real + synthetic on top): batch 21 at r = 0.25 | batch 32 at r = 0.5, and the compute control,
#    real only at batch 32; three seeds each, two multiruns at a time (one thread each);
# 3. vlmalign-report over all of them.
set -euo pipefail
OUT=${1:-outputs/synth2_study}
mkdir -p "$OUT"
GENERATOR="$OUT/generator/generator"
if [ ! -f "$GENERATOR/meta.json" ]; then
  vlmalign-synth2-generator real.num_scenes=1000 hydra.run.dir="$OUT/generator" > "$OUT/generator.log" 2>&1
fi
sweep() {  # ratios batch-size log-name
  OMP_NUM_THREADS=1 vlmalign-train -m experiment=synth2/mix data.generator_path="$GENERATOR" \
    data.num_real_scenes=1000 "data.synthetic_ratio=$1" "data.batch_size=$2" seed=0,1,2 task_name=synth2_study \
    callbacks.progress_bar=null hydra.sweep.dir="$OUT/sweep_$3" > "$OUT/sweep_$3.log" 2>&1
}
sweep 0,0.25 16 low &
sweep 0.5,0.75 16 high &
wait
sweep 0.25 21 add21 &
sweep 0.5,0 32 add32 &
wait
vlmalign-report "$OUT/sweep_low" "$OUT/sweep_high" "$OUT/sweep_add21" "$OUT/sweep_add32" \
  --metrics test/chair_i,test/chair_s,test/cover,test/exact_match,test/mentions_per_caption --out "$OUT/report"
