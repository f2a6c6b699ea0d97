#!/usr/bin/env bash
# One prepared run of the GPU benchmarks (issue 21), sized for a short loan of one H100/H200: DPO, mDPO and GRPO under
# DeepSpeed ZeRO-2 in bf16 on a randomly initialised ~1B LLaVA-style model (benchmarks/zero_objectives.py), and
# TRL's DPOTrainer on the same model (benchmarks/peers/trl_dpo.py). Each member runs in its own process under its
# own timeout, and the suite under a deadline of 8 minutes. One JSON line per member (pairs/s or prompts/s,
# tokens/s, peak memory, MFU, versions and device) on stdout and in $OUT/gpu_suite.jsonl, or
# benchmarks/results/gpu_suite.jsonl without $OUT. A member that fails or times out gets a line with its error and
# the end of its stderr; the suite goes on. How to run it and what it measures: docs/distributed.md.
#
#   bash benchmarks/gpu_suite.sh             # one GPU
#   bash benchmarks/gpu_suite.sh --dry-run   # the same path on CPU: tiny model, DeepSpeed's CPU accelerator, bf16
#
# Environment:
#   PYTHON               the interpreter (default python3); it must already hold every package: nothing is fetched
#   GPU_SUITE_DRY_RUN=1  the same as --dry-run
#   GPU_SUITE_MEMBERS    which members, in order (default "dpo mdpo grpo trl_dpo")
#   GPU_SUITE_CACHE      where the random model is built once and reused (default $TMPDIR/vlmalign-gpu-suite)
#   GPU_SUITE_WHEELS     a folder of wheels installed first with pip --no-index (the GPU machine has no network)
#   GPU_SUITE_MEMBER_TIMEOUT, GPU_SUITE_BUDGET_S   seconds per member (80; dry run 180) and for the suite (470)
# Exit status: 0 when every member reported its figures (a skipped TRL peer counts as reported), 1 otherwise.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DRY_RUN=${GPU_SUITE_DRY_RUN:-0}
for argument in "$@"; do
  case $argument in
    --dry-run) DRY_RUN=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "gpu_suite.sh: unknown argument '$argument' (only --dry-run)" >&2; exit 2 ;;
  esac
done
PYTHON=${PYTHON:-python3}
MEMBERS=${GPU_SUITE_MEMBERS:-dpo mdpo grpo trl_dpo}
CACHE=${GPU_SUITE_CACHE:-${TMPDIR:-/tmp}/vlmalign-gpu-suite}
RESULTS=${OUT:+$OUT/gpu_suite.jsonl}
RESULTS=${RESULTS:-$ROOT/benchmarks/results/gpu_suite.jsonl}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_suite.XXXXXX")  # each member's stdout and stderr
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$CACHE" "$(dirname "$RESULTS")"
: >"$RESULTS"

# The repo runs from its checkout (nothing installed), offline, without wandb; one port for DeepSpeed's
# single-process group, away from torchrun's default.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
export MASTER_ADDR=${MASTER_ADDR:-127.0.0.1} MASTER_PORT=${MASTER_PORT:-29617}

# Sizes. GPU: the 1B model, 3 warm-up + 10 timed steps of 8 pairs (GRPO: 8 prompts x 4 samples of up to 48 tokens).
# Budget on an H100: imports ~15 s, model load ~10 s, DeepSpeed set-up ~10 s, 13 steps < 30 s, so 80 s a member;
# the model is built once (~40 s). 15 + 80 + 4 x 80 = 415 s, plus kill grace, within the 8-minute deadline.
if [[ $DRY_RUN == 1 ]]; then
  export DS_ACCELERATOR=cpu  # DeepSpeed picks its CPU accelerator at import (gloo collectives)
  SIZE=tiny; MEMBER_TIMEOUT=${GPU_SUITE_MEMBER_TIMEOUT:-180}  # a fresh machine compiles DeepSpeed's CPU comm op (~70 s)
  ZERO_ARGS=(--cpu-smoke --batch-size 2 --steps 2 --warmup 1 --max-new-tokens 8)
  TRL_ARGS=(--bf16 --batch-size 2 --steps 2 --warmup 1 --num-pairs 6 --image-size 32)
  DRY_FLAG=(--dry-run)
else
  SIZE=1b; MEMBER_TIMEOUT=${GPU_SUITE_MEMBER_TIMEOUT:-80}
  ZERO_ARGS=(--batch-size 8 --steps 10 --warmup 3 --group-size 4 --max-new-tokens 48)
  TRL_ARGS=(--gpu --bf16 --batch-size 8 --steps 10 --warmup 3 --num-pairs 104 --image-size 224)
  DRY_FLAG=()
fi
DEADLINE=$(( $(date +%s) + ${GPU_SUITE_BUDGET_S:-470} ))  # 8 minutes less the last line's writing
MIN_BUDGET=20  # a member given less could not even import; it is skipped with a line saying so
FAILED=0

emit() {  # one line to stdout and the results file
  printf '%s\n' "$1" | tee -a "$RESULTS"
}

lines() {  # benchmarks/suite_lines.py: stdlib only, so it speaks even where the members cannot run
  "$PYTHON" -m benchmarks.suite_lines "$@"
}

skip() {  # member, reason
  emit "$(lines skip --member "$1" --reason "$2" --machine-file "$WORK/preflight.json" "${DRY_FLAG[@]}")"
}

run_member() {  # member, command...: run it under its timeout (capped by the deadline) and emit its line
  local member=$1 budget=$MEMBER_TIMEOUT left started line
  shift
  left=$(( DEADLINE - $(date +%s) ))
  (( left < budget )) && budget=$left
  if (( budget < MIN_BUDGET )); then
    skip "$member" "the suite's 8-minute deadline is spent (${left} s left)"
    FAILED=1
    return 1
  fi
  started=$(date +%s.%N)
  timeout -k 5 "$budget" "$@" >"$WORK/$member.out" 2>"$WORK/$member.err"
  local rc=$?
  line=$(lines record --member "$member" --rc "$rc" --stdout "$WORK/$member.out" --stderr "$WORK/$member.err" \
    --wall-s "$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" --timeout-s "$budget" \
    --machine-file "$WORK/preflight.json" "${DRY_FLAG[@]}") || FAILED=1
  emit "$line"
  return "$rc"
}

if [[ -n ${GPU_SUITE_WHEELS:-} ]]; then  # offline install of what the machine's Python lacks (docs/distributed.md)
  shopt -s nullglob
  wheels=("$GPU_SUITE_WHEELS"/*.whl)
  (( ${#wheels[@]} )) || { echo "gpu_suite.sh: GPU_SUITE_WHEELS=$GPU_SUITE_WHEELS holds no .whl" >&2; exit 2; }
  "$PYTHON" -m pip install --quiet --no-index --no-deps "${wheels[@]}" >&2 || {
    echo "gpu_suite.sh: installing the wheels of $GPU_SUITE_WHEELS failed" >&2; exit 2; }
fi

# Preflight: versions, the device, the packages missing; without a GPU (and not a dry run) nothing else can run.
if ! lines machine "${DRY_FLAG[@]}" >"$WORK/preflight.json"; then
  emit "$(cat "$WORK/preflight.json")"
  exit 1
fi
emit "$(cat "$WORK/preflight.json")"

# The model, built once (seeded): the members load it from the cache; TRL needs its directory.
if ! run_member model "$PYTHON" -m benchmarks.random_llava --size "$SIZE" --cache-dir "$CACHE"; then
  echo "gpu_suite.sh: the model could not be built; see the 'model' line" >&2
  exit 1
fi
MODEL_DIR=$("$PYTHON" -c 'import json, sys; print(json.loads(sys.stdin.read().splitlines()[-1])["model_dir"])' \
  <"$WORK/model.out")

for member in $MEMBERS; do
  case $member in
    dpo|mdpo|grpo)
      run_member "$member" "$PYTHON" benchmarks/zero_objectives.py --objective "$member" --stage 2 \
        --cache-dir "$CACHE" "${ZERO_ARGS[@]}" ;;
    trl_dpo)
      if missing=$("$PYTHON" -c 'import trl, datasets' 2>&1); then
        run_member trl_dpo "$PYTHON" -m benchmarks.peers.trl_dpo --model-dir "$MODEL_DIR" "${TRL_ARGS[@]}"
      else  # the peer is optional (pyproject's `bench` extra); its absence is reported, not fatal
        skip trl_dpo "TRL's peer needs trl==1.16.0 and datasets in $PYTHON (pip install -e '.[bench]', or wheels \
through GPU_SUITE_WHEELS): $(tail -n 1 <<<"$missing")"
      fi ;;
    *)
      skip "$member" "unknown member '$member' (known: dpo mdpo grpo trl_dpo)"
      FAILED=1 ;;
  esac
done
exit "$FAILED"
