#!/usr/bin/env bash
# The OPD results table (spec 2.5, issue 11; docs/opd_study.md) in one command:
#   1. the teacher on the split's train days (skipped when TEACHER names a teacher run to distil from);
#   2. PPO, OPDS and OPD with the same settings, OPD distilling from the teacher, and DDQN (configs/ddqn.yaml's
#      own batch and replay settings, the same 2,048 orders an iteration) unless DDQN=0; all at once when
#      PARALLEL=1; validation PA logged every VALIDATION_EVERY iterations (the learning curves);
#   3. all of them with TWAP, VWAP and IS (Almgren-Chriss) on the same orders of the validation, test and
#      train days: mean +- SE, paired 95% CIs against TWAP and OPD - OPDS, OPDS - PPO, learning_curves.png
#      (train against test: how much of a student's result is the 24 training sessions remembered);
#   4. `rlexec foresight`: what the teacher exploits that the past does not predict, out of sample;
#   5. the walk-forward study (configs/opd_walkforward.yaml), when WALKFORWARD_ITERATIONS > 0.
# Usage: configs/opd_experiment.sh [ITERATIONS] [OUT] [WALKFORWARD_ITERATIONS] [SPLIT]
#   defaults 489 (489 x 2,048 orders = 1,001,472 training orders per method), runs/opd_experiment, 0,
#   us_equity_1min (or spy_2011, sample).
# Environment:
#   BATCH (env steps per iteration, default 16384 = 2,048 orders of 8 steps), MINIBATCH (default 1024, spec
#   2.2's batch); PARALLEL (default 1: the three students train at once, one torch thread each);
#   TEACHER (a teacher run folder; default: train one), TEACHER_ITERATIONS (default ITERATIONS);
#   TIME_S (a cap on each run's training seconds; default none); VALIDATION_EVERY (default 5); DDQN (default 1);
#   RLEXEC (default `rlexec`; from a checkout: RLEXEC="python -m rlexec.cli.main"),
#   ORDERS (evaluation orders per part, default 2000), VALIDATION_ORDERS (default 500).
# Every run uses its config's seed (42); the evaluation orders use seed 0. On 2 cores at the defaults the
# three students took about 2 h together (docs/opd_study.md, "Results at 1 M orders"); DDQN about 45 min on one core.
set -euo pipefail
ITERATIONS="${1:-489}"
OUT="${2:-runs/opd_experiment}"
WALKFORWARD_ITERATIONS="${3:-0}"
SPLIT="${4:-us_equity_1min}"
read -r -a RLEXEC <<< "${RLEXEC:-rlexec}"
BATCH="${BATCH:-16384}"
MINIBATCH="${MINIBATCH:-1024}"
PARALLEL="${PARALLEL:-1}"
TEACHER_ITERATIONS="${TEACHER_ITERATIONS:-$ITERATIONS}"
ORDERS="${ORDERS:-2000}"
VALIDATION_ORDERS="${VALIDATION_ORDERS:-500}"
VALIDATION_EVERY="${VALIDATION_EVERY:-5}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"   # parallel runs on few cores: one torch thread each
DDQN="${DDQN:-1}"
scale=(--set env_runners.num_env_runners=0 --set "training.train_batch_size_per_learner=$BATCH"
       --set "training.minibatch_size=$MINIBATCH")
time_cap=()
[[ -n "${TIME_S:-}" ]] && time_cap=(--set "stop.time_s=$TIME_S")
common=(--out "$OUT" "${time_cap[@]}" --set "environment.env_config.split={preset: $SPLIT}"
        --set "validation={every: $VALIDATION_EVERY, orders: $VALIDATION_ORDERS, seed: 1}")
students=(--set "stop.training_iterations=$ITERATIONS")

TEACHER="${TEACHER:-}"
if [[ -z "$TEACHER" ]]; then
  "${RLEXEC[@]}" train configs/opd_teacher.yaml "${common[@]}" "${scale[@]}" \
    --set "stop.training_iterations=$TEACHER_ITERATIONS"
  TEACHER="$OUT/train/opd_teacher"
fi
mkdir -p "$OUT/logs"
train_student() {  # config, then extra arguments
  local config="$1"; shift
  "${RLEXEC[@]}" train "$config" "${common[@]}" "${students[@]}" "$@" > "$OUT/logs/$(basename "$config" .yaml).log" 2>&1
}
pids=()
launch() {  # train_student in the background when PARALLEL=1, else in turn
  if [[ "$PARALLEL" == 1 ]]; then train_student "$@" & pids+=($!); else train_student "$@"; fi
}
launch configs/ppo.yaml "${scale[@]}"
launch configs/opds.yaml "${scale[@]}"
launch configs/opd.yaml "${scale[@]}" --set "training.teacher_checkpoint=$TEACHER"
[[ "$DDQN" == 1 ]] && launch configs/ddqn.yaml   # its own batch and replay settings (docs/ddqn.md)
for pid in "${pids[@]}"; do wait "$pid"; done
ddqn_policy=()
[[ "$DDQN" == 1 ]] && ddqn_policy=(--policy "$OUT/train/ddqn")

for part in validation test train; do
  "${RLEXEC[@]}" evaluate --split "$SPLIT" --part "$part" --num-orders "$ORDERS" --seed 0 --strategies twap,vwap,is \
    --policy "$OUT/train/ppo" --policy "$OUT/train/opds" --policy "$OUT/train/opd" "${ddqn_policy[@]}" \
    --policy "$TEACHER" --compare opd:opds --compare opds:ppo --out "$OUT/$part"
done
"${RLEXEC[@]}" foresight --split "$SPLIT" --num-orders "$ORDERS" --strategies twap,vwap \
  --policy "$TEACHER" --policy "$OUT/train/ppo" --policy "$OUT/train/opds" --policy "$OUT/train/opd" \
  "${ddqn_policy[@]}" --out "$OUT"

if [[ "$WALKFORWARD_ITERATIONS" != 0 ]]; then
  "${RLEXEC[@]}" walkforward configs/opd_walkforward.yaml --out "$OUT" "${scale[@]}" \
    --set "stop.training_iterations=$WALKFORWARD_ITERATIONS"
fi
