#!/usr/bin/env bash
# The Synth² row of the claims table (arXiv 2403.07750): with a limited real budget (1,000 shapes scenes), does
# adding synthetic (caption, embedding) pairs beat real data alone? Real only (batch 16), real + synthetic
# (16 real + 16 synthetic per batch) and the compute control, real only at batch 32; 400 steps, 3 seeds
# (9 runs, two at a time, after ~7 minutes for the generator: ~30 minutes on 2 idle cores).
#   bash experiments/synth2/run.sh
source "$(dirname "$0")/../claims/common.sh"
STUDY=$CLAIMS_OUT/synth2
GENERATOR=$STUDY/generator/generator
mkdir -p "$STUDY"
if [ ! -f "$GENERATOR/meta.json" ]; then
  vlmalign-synth2-generator real.num_scenes=1000 hydra.run.dir="$STUDY/generator" > "$STUDY/generator.log" 2>&1
fi
SYNTH=(experiment=synth2/mix data.generator_path="$GENERATOR" data.num_real_scenes=1000 trainer.max_steps=400
       trainer.val_check_interval=200 seed=0,1,2 callbacks.progress_bar=null eval.counter_prior_scenes=100 "${PARALLEL[@]}")
vlmalign-train -m "${SYNTH[@]}" data.synthetic_ratio=0.5,0 data.batch_size=32 hydra.sweep.dir="$STUDY/batch32"
vlmalign-train -m "${SYNTH[@]}" data.synthetic_ratio=0 data.batch_size=16 hydra.sweep.dir="$STUDY/batch16"
