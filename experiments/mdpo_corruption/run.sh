#!/usr/bin/env bash
# mDPO Table 3: which corrupted image m' serves the conditional term. Full mDPO on image-only pairs, m' = a crop
# keeping 1-20% or 20-50% of the area, another image of the batch, Gaussian noise or half the patches masked;
# 3 seeds (15 members, ~25 minutes on 2 idle cores).
#   bash experiments/mdpo_corruption/run.sh
source "$(dirname "$0")/../claims/common.sh"
vlmalign-train -m experiment=mdpo_corruption/crop_0_20,mdpo_corruption/crop_20_50,mdpo_corruption/other_image,mdpo_corruption/noise,mdpo_corruption/mask \
  "${COMMON[@]}" hydra.sweep.dir="$CLAIMS_OUT/mdpo_table3"
