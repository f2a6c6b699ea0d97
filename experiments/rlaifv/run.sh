#!/usr/bin/env bash
# The RLAIF-V rows of the claims table (arXiv 2405.17220): divide-and-conquer labeling, 2 rounds of 600 fresh
# instructions; the same with self-rewarding labels (the labeler judges whole responses); and divide-and-conquer
# in one round of the same 1,200 instructions. 8 samples per instruction at T = 0.7 and 4 DPO epochs per round:
# the world v3.1 base rarely errs at T = 0.7 (~0.2 wrong mentions per sample), so 200 instructions x 4 samples gave
# ~50 pairs a round, 6 optimizer steps, and a model that did not move. Seeds 0, 1, 2: 9 pipelines, two at a time,
# one thread each (~30 minutes on 2 idle cores, plus ~5 minutes the first time to build the shapes labeler VLM).
#   bash experiments/rlaifv/run.sh
source "$(dirname "$0")/../claims/common.sh"
STUDY=$CLAIMS_OUT/rlaifv
declare -A EXTRA=([dnc]="rounds=2" [self_reward]="rounds=2 splitter=whole_response"
                  [one_round]="rounds=1 instructions.per_round=1200")
ROUND=(instructions.per_round=600 sampling.num_samples=8 train.epochs=4
       'train.overrides=["objective=dpo","reference=precomputed","optimizer.lr=1e-5","scheduler.num_warmup_steps=10","callbacks.progress_bar=null","task_name=rlaifv_round","eval.pope_samplings=[]","eval.counter_prior_scenes=0"]')
pipeline() {  # condition seed
  # shellcheck disable=SC2086
  vlmalign-rlaifv seed="$2" "${ROUND[@]}" ${EXTRA[$1]} hydra.run.dir="$STUDY/$1/seed$2" > "$STUDY/$1-seed$2.log" 2>&1 \
    || echo "$1 seed $2 failed: see $STUDY/$1-seed$2.log"
}
mkdir -p "$STUDY"
for seed in 0 1 2; do
  for condition in dnc self_reward one_round; do
    while [ "$(jobs -rp | wc -l)" -ge "${CLAIMS_JOBS:-2}" ]; do wait -n; done
    pipeline "$condition" "$seed" &
  done
done
wait
