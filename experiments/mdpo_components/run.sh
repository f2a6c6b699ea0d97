#!/usr/bin/env bash
# mDPO Table 2 on both pair kinds: DPO, w/o conditional, w/o anchor and mDPO on text-detectable pairs (rejected
# captions with a tell in the text: the unconditional-preference setting) and on image-only pairs (only the
# image refutes them), 3 seeds (24 members, ~30 minutes on 2 idle cores).
#   bash experiments/mdpo_components/run.sh
source "$(dirname "$0")/../claims/common.sh"
vlmalign-train -m experiment=mdpo_components/dpo,mdpo_components/no_conditional,mdpo_components/no_anchor,mdpo_components/mdpo \
  data.pair_kind=text_detectable,image_only "${COMMON[@]}" hydra.sweep.dir="$CLAIMS_OUT/mdpo_table2"
