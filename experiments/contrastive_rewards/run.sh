#!/usr/bin/env bash
# Contrastive rewards (Shen et al. 2024, arXiv 2403.07708) against plain PPO and the group baselines (GRPO, RLOO)
# under reward-label noise. Four parts, each one command:
#   bash experiments/contrastive_rewards/run.sh reward_models   # 3 reward models: 0%, 20%, 40% of labels flipped
#   bash experiments/contrastive_rewards/run.sh noise_0         # then, per noise level: 4 trainers x 3 seeds
#   bash experiments/contrastive_rewards/run.sh noise_20
#   bash experiments/contrastive_rewards/run.sh noise_40
#   bash experiments/contrastive_rewards/run.sh oracle          # GRPO on the exact scene reward: the upper bound,
#                                                                # and the base's own samples (lr 0, one step)
# Every policy starts from the shipped world v3.1 base; one reward model per noise level (seed 0) serves every
# trainer and seed of that level, so the seeds vary the RL, not the reward model. Results: docs/rl.md.
source "$(dirname "$0")/../claims/common.sh"
STUDY=$CLAIMS_OUT/contrastive_rewards
PART=${1:?usage: run.sh reward_models|noise_0|noise_20|noise_40|oracle}
case "$PART" in
  reward_models)
    vlmalign-train -m experiment=contrastive_rewards/reward_model objective.terms.bradley_terry.label_noise=0.0,0.2,0.4 \
      "${PARALLEL[@]}" hydra.sweep.dir="$STUDY/reward_models" hydra.sweep.subdir='noise_${objective.terms.bradley_terry.label_noise}' ;;
  noise_0|noise_20|noise_40)
    NOISE=$(python -c "print(${PART#noise_} / 100)")
    MODEL=$STUDY/reward_models/noise_$NOISE/model
    [ -d "$MODEL" ] || { echo "no reward model at $MODEL: run 'bash $0 reward_models' first" >&2; exit 2; }
    vlmalign-train -m experiment=contrastive_rewards/ppo,contrastive_rewards/ppo_contrastive,contrastive_rewards/grpo,contrastive_rewards/rloo \
      ++reward_model="$MODEL" "${COMMON[@]}" hydra.sweep.dir="$STUDY/$PART" ;;
  oracle)
    vlmalign-train -m experiment=contrastive_rewards/grpo_oracle "${COMMON[@]}" hydra.sweep.dir="$STUDY/oracle"
    # the starting policy's validation samples (the same draws every arm's validation makes, seeded by the seed)
    vlmalign-train -m experiment=contrastive_rewards/grpo_oracle optimizer.lr=0 trainer.max_steps=1 \
      trainer.val_check_interval=1 "${COMMON[@]}" hydra.sweep.dir="$STUDY/oracle_base" ;;
  *) echo "unknown part '$PART': reward_models, noise_0, noise_20, noise_40 or oracle" >&2; exit 2 ;;
esac
