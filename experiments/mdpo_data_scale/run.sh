#!/usr/bin/env bash
# mDPO's data-scale claim: its gap to DPO grows with the number of preference pairs. DPO and mDPO on 1,200, 2,400
# and 4,800 image-only pairs, one epoch each (75, 150, 300 steps of batch 16), 3 seeds (18 members, ~17 minutes
# on 2 idle cores).
#   bash experiments/mdpo_data_scale/run.sh
source "$(dirname "$0")/../claims/common.sh"
for pairs in 1200 2400 4800; do
  vlmalign-train -m experiment=mdpo_components/dpo,mdpo_components/mdpo data.num_train_scenes=$pairs \
    trainer.max_steps=$((pairs / 16)) "${COMMON[@]}" hydra.sweep.dir="$CLAIMS_OUT/mdpo_data_scale/pairs$pairs"
done
