#!/usr/bin/env bash
# The shipped base scored as the studies score their arms (one thread, 300 usual + 100 pattern-breaking test
# scenes, POPE): the reference row of docs/claims.md, since CPU kernels reduce in another order with another thread
# count (the shipped metrics.json was scored with 2). One SFT step at lr 0 carries the run; its initial/* metrics
# are the base's (~2 minutes).
#   bash experiments/claims/base.sh
source "$(dirname "$0")/common.sh"
vlmalign-train objective=sft reference=none evaluate_initial=true trainer.max_steps=1 optimizer.lr=0 \
  callbacks.progress_bar=null eval.counter_prior_scenes=100 hydra.run.dir="$CLAIMS_OUT/base"
