#!/usr/bin/env bash
# nSFT (arXiv 2411.14797) vs DPO vs mDPO vs continued SFT on the same image-only pairs, 3 seeds (15 members,
# ~15 minutes on 2 idle cores). nSFT learns from the rejected caption through corrective question turns
# ("Is there a blue square?" "No.") that the world v3.1 base answers (POPE ~0.94); continued SFT trains on the
# chosen captions alone, the control for the extra steps.
#   bash experiments/nsft_vs_rlhf/run.sh
source "$(dirname "$0")/../claims/common.sh"
STUDY=$CLAIMS_OUT/nsft
vlmalign-train -m objective=sft reference=none task_name=nsft_claims "${COMMON[@]}" hydra.sweep.dir="$STUDY/sft"
vlmalign-train -m objective=dpo,mdpo reference=precomputed task_name=nsft_claims "${COMMON[@]}" \
  hydra.sweep.dir="$STUDY/preference"
vlmalign-train -m objective=nsft data=shapes_nsft reference=none task_name=nsft_claims "${COMMON[@]}" \
  hydra.sweep.dir="$STUDY/nsft"
# the same with one corrective question per example: the single-turn form the base answers
vlmalign-train -m objective=nsft data=shapes_nsft data.negatives_max_turns=1 reference=none task_name=nsft_claims \
  "${COMMON[@]}" hydra.sweep.dir="$STUDY/nsft_one_turn"
