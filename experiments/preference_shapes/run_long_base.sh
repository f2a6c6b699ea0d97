#!/usr/bin/env bash
# Follow-up 5 of docs/preference.md: the on-policy study of Follow-up 2 from a base trained twice as long
# (base=sft_shapes_long, 3,000 steps). Builds that base on first use (about 11 minutes on 2 idle cores),
# samples and ranks its own captions with exact labels, then trains each objective with 3 seeds, two
# multiruns at a time on one thread each.
set -euo pipefail
PAIRS=outputs/onpolicy_oracle_pairs_long
vlmalign-rlaifv labeler=oracle rounds=1 instructions.per_round=750 stop_after=pairs seed=0 \
    policy.base=sft_shapes_long hydra.run.dir=$PAIRS
common=(reference=precomputed data=rlaifv_pairs data.pairs_file=$PAIRS/round_1/pairs.jsonl base=sft_shapes_long
        evaluate_initial=false callbacks.progress_bar=null task_name=onpolicy_long_study)
OMP_NUM_THREADS=1 vlmalign-train -m objective=dpo,apo seed=0,1,2 "${common[@]}" &
OMP_NUM_THREADS=1 vlmalign-train -m objective=mdpo,cpo seed=0,1,2 "${common[@]}" &
wait
base_dir=$(ls -d .cache/vlmalign/bases/sft_shapes_long-*/ | head -1)  # the fingerprint is the composed config's
vlmalign-report outputs/onpolicy_long_study/multiruns/* --base "$base_dir"
