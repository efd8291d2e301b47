#!/usr/bin/env bash
# The OPD results table (spec 2.5, issue 11; docs/opd_study.md) in one command:
#   1. TWAP, VWAP, IS (Almgren-Chriss), PPO, OPDS, OPD and the teacher trained on the split's train days,
#      with validation PA logged every iteration (the learning curves);
#   2. all of them on the same orders of the validation days and of the test days: mean +- SE, paired
#      differences with 95% CIs against TWAP and OPD - OPDS, OPDS - PPO, learning_curves.png;
#   3. the walk-forward study (configs/opd_walkforward.yaml): per test day and pooled.
# Usage: configs/opd_experiment.sh [ITERATIONS] [OUT] [WALKFORWARD_ITERATIONS] [SPLIT]
#   defaults 40, runs/opd_experiment, ITERATIONS, us_equity_1min (or spy_2011); WALKFORWARD_ITERATIONS=0 skips 3.
# Environment: RLEXEC (default `rlexec`; from a checkout: RLEXEC="python -m rlexec.cli.main"),
#   ORDERS (evaluation orders per part, default 2000), VALIDATION_ORDERS (default 500).
# Every run uses its config's seed (42); the evaluation orders use seed 0.
set -euo pipefail
ITERATIONS="${1:-40}"
OUT="${2:-runs/opd_experiment}"
WALKFORWARD_ITERATIONS="${3:-$ITERATIONS}"
SPLIT="${4:-us_equity_1min}"
read -r -a RLEXEC <<< "${RLEXEC:-rlexec}"
ORDERS="${ORDERS:-2000}"
VALIDATION_ORDERS="${VALIDATION_ORDERS:-500}"
common=(--out "$OUT" --set "stop.training_iterations=$ITERATIONS" --set env_runners.num_env_runners=0
        --set "environment.env_config.split={preset: $SPLIT}"
        --set "validation={every: 1, orders: $VALIDATION_ORDERS, seed: 1}")

"${RLEXEC[@]}" train configs/opd_teacher.yaml "${common[@]}"
"${RLEXEC[@]}" train configs/ppo.yaml "${common[@]}"
"${RLEXEC[@]}" train configs/opds.yaml "${common[@]}"
"${RLEXEC[@]}" train configs/opd.yaml "${common[@]}" --set "training.teacher_checkpoint=$OUT/train/opd_teacher"

for part in validation test; do
  "${RLEXEC[@]}" evaluate --split "$SPLIT" --part "$part" --num-orders "$ORDERS" --seed 0 --strategies twap,vwap,is \
    --policy "$OUT/train/ppo" --policy "$OUT/train/opds" --policy "$OUT/train/opd" \
    --policy "$OUT/train/opd_teacher" --compare opd:opds --compare opds:ppo --out "$OUT/$part"
done

if [[ "$WALKFORWARD_ITERATIONS" != 0 ]]; then
  "${RLEXEC[@]}" walkforward configs/opd_walkforward.yaml --out "$OUT" \
    --set "stop.training_iterations=$WALKFORWARD_ITERATIONS" --set env_runners.num_env_runners=0
fi
