#!/usr/bin/env bash
# mDPO's extra anchors: the anchor on y_w alone (mDPO), + y_l, + y_l and m'; image-only pairs, 3 seeds
# (9 members, ~15 minutes on 2 idle cores).
#   bash experiments/mdpo_anchors/run.sh
source "$(dirname "$0")/../claims/common.sh"
vlmalign-train -m experiment=mdpo_anchors/chosen,mdpo_anchors/chosen_rejected,mdpo_anchors/chosen_rejected_corrupted \
  "${COMMON[@]}" hydra.sweep.dir="$CLAIMS_OUT/mdpo_anchors"
