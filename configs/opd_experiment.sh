#!/usr/bin/env bash
# The OPD results table (spec 2.5) on shared/data/us_equity_1min: TWAP, VWAP, PPO, OPDS, OPD (+ the teacher).
# Usage: configs/opd_experiment.sh [ITERATIONS] [OUT]      (defaults 40, runs/opd_experiment)
# Every run trains on the train days, is reported on the test day; all use the configs' seed (42).
set -euo pipefail
ITERATIONS="${1:-40}"
OUT="${2:-runs/opd_experiment}"
common=(--out "$OUT" --set "stop.training_iterations=$ITERATIONS" --set env_runners.num_env_runners=0)

rlexec train configs/opd_teacher.yaml "${common[@]}"
rlexec train configs/ppo.yaml "${common[@]}"
rlexec train configs/opds.yaml "${common[@]}"
rlexec train configs/opd.yaml "${common[@]}" --set "training.teacher_checkpoint=$OUT/train/opd_teacher"

for part in validation test; do
  rlexec evaluate --split us_equity_1min --part "$part" --num-orders 2000 --seed 0 --strategies twap,vwap \
    --policy "$OUT/train/ppo" --policy "$OUT/train/opds" --policy "$OUT/train/opd" \
    --policy "$OUT/train/opd_teacher" --out "$OUT/$part"
done
