#!/usr/bin/env bash
# Every first look on the shipped world v3.1 base in one go (docs/foundation.md "World v3.1", docs/preference.md
# "World v3"): the text-only check, DPO and mDPO on both pair kinds, and SimPO, ORPO and KTO on image-only pairs;
# 3 seeds each, two members at a time with one thread each (the 2-core machine these numbers come from).
#   bash experiments/world_v3/first_look.sh            # ~35 minutes on 2 idle cores
set -euo pipefail
export OMP_NUM_THREADS=1
PARALLEL="hydra/launcher=local_parallel hydra.launcher.n_jobs=2"
COMMON="evaluate_initial=false callbacks.progress_bar=null eval.counter_prior_scenes=100 $PARALLEL"

# Deliverable 3: can a blind model (blank images) separate the pairs? Read val/rewards/accuracies per pair kind.
vlmalign-train -m task_name=text_only objective=dpo data.blank_images=true data.pair_kind=text_detectable,image_only \
    evaluate_initial=false eval.num_scenes=50 'eval.pope_samplings=[]' eval.counter_prior_scenes=0 \
    callbacks.progress_bar=null $PARALLEL
# DPO and mDPO on text-detectable and image-only pairs.
vlmalign-train -m task_name=first_look objective=dpo,mdpo data.pair_kind=text_detectable,image_only seed=0,1,2 $COMMON
# The preference family (issue 23): reference-free SimPO and ORPO, and KTO on the same scenes as unpaired examples.
vlmalign-train -m task_name=first_look_family objective=simpo,orpo reference=none data.pair_kind=image_only \
    seed=0,1,2 $COMMON
vlmalign-train -m task_name=first_look_family objective=kto data=shapes_unpaired data.pair_kind=image_only \
    seed=0,1,2 $COMMON

BASE=$(ls -d "${VLMALIGN_CACHE:-.cache/vlmalign}"/bases/sft_shapes-*-shipped | head -1)
METRICS=val/chair_i,val/cover,test/chair_i,test/chair_s,test/cover,test/mentions_per_caption,test/counter_prior/chair_i
METRICS=$METRICS,test/pope/random/accuracy,test/pope/popular/accuracy,test/pope/adversarial/accuracy
vlmalign-report outputs/text_only/multiruns/* --metrics val/rewards/accuracies,val/rewards/margins,val/loss
vlmalign-report outputs/first_look/multiruns/* outputs/first_look_family/multiruns/* --base "base=$BASE" \
    --metrics "$METRICS" --sort val/chair_i
