#!/usr/bin/env bash
# mDPO Table 2 for one pair kind: DPO, w/o conditional, w/o anchor and mDPO, 3 seeds (12 members, ~15-20 minutes
# on 2 cores). The claims table runs both kinds; the difference between them is the unconditional-preference question.
#   bash experiments/mdpo_components/run.sh text_detectable   # rejected captions with a tell in the text
#   bash experiments/mdpo_components/run.sh image_only        # rejected captions only the image refutes
source "$(dirname "$0")/../claims/common.sh"
KIND=${1:?usage: run.sh text_detectable|image_only}
vlmalign-train -m experiment=mdpo_components/dpo,mdpo_components/no_conditional,mdpo_components/no_anchor,mdpo_components/mdpo \
  data.pair_kind="$KIND" "${COMMON[@]}" hydra.sweep.dir="$CLAIMS_OUT/mdpo_table2/$KIND"
