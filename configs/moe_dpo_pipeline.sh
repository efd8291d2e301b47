#!/usr/bin/env bash
# MoE-DPO from the experts to the regime table (issue 10; docs/moe_dpo.md "Pipeline"), one regime per run:
# each regime's MoE-DPO fine-tunes that regime's four experts (as SIP weighs them per regime) from that regime's
# preference pairs, and its gate starts from the SIP gate.
# Usage: configs/moe_dpo_pipeline.sh SIP_RUN [EPISODES] [ITERATIONS] [EXPERT_LR] [OUT]
#   SIP_RUN     an `rlexec sip configs/sip.yaml` run folder (runs/sip/sip/<time>-<hash>)
#   EPISODES    preference contexts per regime (default 200; held-out set: a quarter of it)
#   ITERATIONS  training iterations = passes over the pairs (default 10, spec 1.5's epochs)
#   EXPERT_LR   the experts' learning rate (default 1e-3: the best held-out log-likelihood of 1e-4 (spec 1.5),
#               1e-3 and 1e-2 x beta 0.1, 0.5 on baseline's pairs; docs/moe_dpo.md "Results")
#   OUT         output root (default runs)
# Needs the experts of configs/experts/ trained into runs/experts (docs/experts.md). Seeds: preference contexts
# 20,000,000+, held-out pairs 30,000,000+, the table 10,000,000+ (training episodes are below 1,100,000).
set -euo pipefail
SIP_RUN="$1"
EPISODES="${2:-200}"
ITERATIONS="${3:-10}"
EXPERT_LR="${4:-1.0e-3}"
OUT="${5:-runs}"
REGIMES=(baseline open midday bullish bearish illiquid volatility_ramp)
rlexec="python -m rlexec.cli.main"
experts=(expert_twap expert_vwap expert_is expert_pov)
# the runs call their experts as the SIP gate does (training.gate_init matches experts by name); they score the
# trajectories with their own references (recompute_reference: true in configs/moe_dpo_*.yaml)

# 1. the trajectory store: every expert greedy and sampled, and SIP's per-step and per-episode draws, on common seeds
sed "s#SIP_RUN#$SIP_RUN#g" configs/regimes_preferences.yaml > "$OUT/regimes_preferences.resolved.yaml"
store() {  # first seed, episodes -> the store folder
  $rlexec regimes "$OUT/regimes_preferences.resolved.yaml" --seed "$1" --episodes "$2" --store --no-plots \
    --logp "$(IFS=,; echo "${experts[*]}")" --out "$OUT/preference_stores" >&2
  echo "$(ls -d "$OUT"/preference_stores/regimes/*/ | sort | tail -1)store"
}
TRAIN_STORE=$(store 20000000 "$EPISODES")
HELD_OUT_STORE=$(store 30000000 $((EPISODES / 4)))

for regime in "${REGIMES[@]}"; do
  for criterion in quality speed; do
    # 2. the pairs of this regime
    $rlexec preferences "$TRAIN_STORE" --criterion $criterion --regime "$regime" --out "$OUT/preferences/${criterion}_$regime"
    $rlexec preferences "$HELD_OUT_STORE" --criterion $criterion --regime "$regime" \
      --out "$OUT/preferences/${criterion}_${regime}_validation"
    # 3. MoE-DPO over this regime's experts, the gate from SIP's
    $rlexec train configs/moe_dpo_$criterion.yaml --out "$OUT" \
      --set "name=moe_dpo_${criterion}_$regime" \
      --set "stop.training_iterations=$ITERATIONS" --set "training.expert_lr=$EXPERT_LR" \
      --set "training.preferences=$OUT/preferences/${criterion}_$regime" \
      --set "training.validation_preferences=$OUT/preferences/${criterion}_${regime}_validation" \
      --set "training.experts=[$(for e in "${experts[@]}"; do printf '%s,' "runs/experts/train/${e}_$regime"; done | sed 's/,$//')]" \
      --set "training.expert_names=[twap,vwap,is,pov]" \
      --set "training.gate_init=$SIP_RUN"
  done
done

# 4. the table: experts, SIP and both MoE-DPO variants on the evaluation seeds
sed "s#SIP_RUN#$SIP_RUN#g" configs/regimes_moe_dpo.yaml > "$OUT/regimes_moe_dpo.resolved.yaml"
$rlexec regimes "$OUT/regimes_moe_dpo.resolved.yaml" --out "$OUT"
