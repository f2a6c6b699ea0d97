# Shared by every study of the claims table (docs/claims.md); sourced by experiments/<study>/run.sh.
# Every member starts from the shipped world v3.1 base (base=sft_shapes), runs with one thread, two members at
# a time (the 2-core machine the table's wall times come from), and writes under $CLAIMS_OUT/<study>/, the folder
# `vlmalign-claims` reads. Test scenes: 300 usual + 100 pattern-breaking; POPE random / popular / adversarial.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
CLAIMS_OUT=${CLAIMS_OUT:-outputs/claims}
PARALLEL=(hydra/launcher=local_parallel hydra.launcher.n_jobs=${CLAIMS_JOBS:-2})
COMMON=(seed=0,1,2 evaluate_initial=false callbacks.progress_bar=null eval.counter_prior_scenes=100 "${PARALLEL[@]}")
mkdir -p "$CLAIMS_OUT"
