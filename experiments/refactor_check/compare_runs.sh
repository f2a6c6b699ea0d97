#!/usr/bin/env bash
# Same config, two checkouts: are a few DPO and mDPO steps bit-identical? (docs/design.md, "Checking a restructure")
#   experiments/refactor_check/compare_runs.sh /path/to/old/checkout /path/to/new/checkout [python]
# Both runs use one shared cache (the SFT base is built once, by the old checkout) and one thread, so the only
# difference is the code. Prints, per objective, how many weight tensors of the exported models are identical.
set -euo pipefail
old=$(cd "$1" && pwd); new=$(cd "$2" && pwd); py=${3:-python}
work=$(mktemp -d)
export VLMALIGN_CACHE=$work/cache OMP_NUM_THREADS=1
common=(experiment=shapes_quick trainer.max_steps=8 trainer.val_check_interval=4 evaluate_initial=false
        eval.num_scenes=20 eval.counter_prior_scenes=0 logger=none callbacks.progress_bar=null)
for side in old new; do
  dir=$old; [ "$side" = new ] && dir=$new
  for objective in dpo mdpo; do
    (cd "$dir" && "$py" -m vlmalign.train "${common[@]}" objective=$objective "hydra.run.dir=$work/$side-$objective" \
      > "$work/$side-$objective.log" 2>&1)
  done
done
"$py" - "$work" <<'PY'
import json, sys
from safetensors.torch import load_file
work = sys.argv[1]
for objective in ("dpo", "mdpo"):
    old, new = (load_file(f"{work}/{side}-{objective}/model/model.safetensors") for side in ("old", "new"))
    same = sum(old.keys() == new.keys() and bool((old[k] == new[k]).all()) for k in old)
    metrics = [json.load(open(f"{work}/{side}-{objective}/metrics.json")) for side in ("old", "new")]
    differ = sorted(k for k in metrics[0] if k != "time/total_s" and metrics[0][k] != metrics[1].get(k))
    print(json.dumps({"objective": objective, "identical_tensors": same, "tensors": len(old), "metrics_differing": differ}))
PY
