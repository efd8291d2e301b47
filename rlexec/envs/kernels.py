"""The fill kernel: one decision step for a batch of orders. The single env and the batch engine
both call it, so they cannot drift apart. Compiled by numba because it runs once per step of every
environment; ``execute_step.py_func`` is the same code as plain Python (the benchmarks' reference).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def execute_step(
    t, step_minutes, n_steps, target_fraction,  # decision
    quantity, sigma, twap_price, price, volume,  # orders and their market
    max_participation, impact_coefficient_bps, impact_exponent, half_spread_bps, force_remainder,  # fill model
    remaining, executed, cash, minute_fills,  # state, updated in place
    out_qty, out_pa_bps, out_concentration_minute,  # per-order results of this step
):
    last = t == n_steps - 1
    for i in range(remaining.shape[0]):
        want = remaining[i]
        if not last:
            asked = target_fraction[i] * quantity[i]
            if asked < want:
                want = asked if asked > 0.0 else 0.0
        per_minute = want / step_minutes
        filled = 0.0
        spent = 0.0
        concentration = 0.0
        for j in range(step_minutes):
            k = t * step_minutes + j
            q = per_minute
            cap = max_participation * volume[i, k]
            if q > cap:
                q = cap
            if last and force_remainder and j == step_minutes - 1:
                # End-of-horizon rule: whatever the cap left over trades now, above the cap.
                q = want - filled
            if q > 0.0:
                participation = q / max(volume[i, k], 1.0)
                impact_bps = impact_coefficient_bps * participation**impact_exponent + half_spread_bps
                # sigma = +1 sells lower, -1 buys higher: impact always works against the trader.
                fill_price = price[i, k] * (1.0 - sigma[i] * impact_bps * 1e-4)
                filled += q
                spent += q * fill_price
                concentration += (q / quantity[i]) ** 2
                minute_fills[i, k] = q
        remaining[i] -= filled
        if last and force_remainder:
            remaining[i] = 0.0  # exact: the forced minute took want - filled, i.e. all that was left
        executed[i] += filled
        cash[i] += spent
        out_qty[i] = filled
        out_pa_bps[i] = sigma[i] * (spent / twap_price[i] - filled) / quantity[i] * 1e4
        out_concentration_minute[i] = concentration
