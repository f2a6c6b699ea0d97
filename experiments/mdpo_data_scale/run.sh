#!/usr/bin/env bash
# mDPO's data-scale claim: its gap to DPO grows with the number of preference pairs. DPO and mDPO on 1,200, 2,400
# and 4,800 pairs of one kind, one epoch each (75, 150, 300 steps of batch 16), 3 seeds (18 members, ~13 minutes
# on 2 idle cores). Text-detectable pairs are where mDPO beats DPO at full size (docs/claims.md#mdpo_table2), so
# they are the fair test of a growing gap; image-only pairs are the control.
#   bash experiments/mdpo_data_scale/run.sh text_detectable
#   bash experiments/mdpo_data_scale/run.sh image_only
source "$(dirname "$0")/../claims/common.sh"
KIND=${1:?usage: run.sh text_detectable|image_only}
for pairs in 1200 2400 4800; do
  vlmalign-train -m experiment=mdpo_components/dpo,mdpo_components/mdpo data.pair_kind="$KIND" \
    data.num_train_scenes=$pairs trainer.max_steps=$((pairs / 16)) "${COMMON[@]}" \
    hydra.sweep.dir="$CLAIMS_OUT/mdpo_data_scale/$KIND/pairs$pairs"
done
