"""The fill kernel: one decision step for a batch of orders. The single env and the batch engine
both call it, so they cannot drift apart. Compiled by numba because it runs once per step of every
environment; ``fill_orders.py_func`` is the same code as plain Python (the benchmark's reference).

The impact law ``participation ** impact_exponent`` is specialised: exponent 0.5 calls ``math.sqrt``
and 1.0 uses the participation as it is, because a runtime exponent compiles to a generic ``pow``
call that took over half of the kernel's time. The results are bit-identical to the generic law
(``sqrt`` is exactly rounded and libm's ``pow(x, 0.5)`` agreed with it on every input tried:
tests/envs/test_env_kernel.py compares whole episodes and 200,000 participations over twelve
decades against :func:`fill_orders` with ``POWER_LAW``).
"""

from __future__ import annotations

import math

from numba import njit

SQRT_LAW, LINEAR_LAW, POWER_LAW = 0, 1, 2  # how fill_orders evaluates participation ** impact_exponent


@njit(cache=True)
def impact_law(impact_exponent):
    """The fastest exact way to raise participation to ``impact_exponent``."""
    if impact_exponent == 0.5:
        return SQRT_LAW
    if impact_exponent == 1.0:
        return LINEAR_LAW
    return POWER_LAW


@njit(cache=True)
def execute_step(
    t, step_minutes, n_steps, target_fraction,  # decision
    quantity, sigma, twap_price, price, volume, horizon_mean_volume,  # orders and their market
    max_participation, impact_coefficient_bps, impact_exponent, half_spread_bps,  # fill model ...
    force_remainder, forced_volume_floor,  # ... (max_participation = inf: no cap)
    remaining, executed, cash, minute_fills,  # state, updated in place
    out_qty, out_pa_bps, out_concentration_minute,  # per-order results of this step
):
    """One step of every order under the fill model of ``FillModel`` (see its docstring)."""
    fill_orders(
        impact_law(impact_exponent),
        t, step_minutes, n_steps, target_fraction,
        quantity, sigma, twap_price, price, volume, horizon_mean_volume,
        max_participation, impact_coefficient_bps, impact_exponent, half_spread_bps,
        force_remainder, forced_volume_floor,
        remaining, executed, cash, minute_fills,
        out_qty, out_pa_bps, out_concentration_minute,
    )


@njit(cache=True)
def fill_orders(
    law,
    t, step_minutes, n_steps, target_fraction,
    quantity, sigma, twap_price, price, volume, horizon_mean_volume,
    max_participation, impact_coefficient_bps, impact_exponent, half_spread_bps,
    force_remainder, forced_volume_floor,
    remaining, executed, cash, minute_fills,
    out_qty, out_pa_bps, out_concentration_minute,
):
    """:func:`execute_step` with the impact law chosen by the caller (tests and the benchmark force
    ``POWER_LAW`` to compare the specialised laws with the generic one)."""
    last = t == n_steps - 1
    forced_minute = step_minutes - 1 if last and force_remainder else -1
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
            liquidity = volume[i, k]
            if j == forced_minute:
                # End-of-horizon rule: whatever the cap left over trades now, above the cap. Its
                # impact is measured against at least a fraction of the horizon's mean minute
                # volume, so that an empty or nearly empty last bar does not make it explode.
                q = want - filled
                floor = forced_volume_floor * horizon_mean_volume[i]
                if liquidity < floor:
                    liquidity = floor
            elif liquidity > 0.0:
                q = per_minute
                cap = max_participation * liquidity
                if q > cap:
                    q = cap
            else:
                continue  # nobody traded in this minute: nothing fills, with or without a cap
            if q > 0.0:
                participation = q / liquidity
                if law == SQRT_LAW:
                    shape = math.sqrt(participation)
                elif law == LINEAR_LAW:
                    shape = participation
                else:
                    shape = participation**impact_exponent
                impact_bps = impact_coefficient_bps * shape + half_spread_bps
                # sigma = +1 sells lower, -1 buys higher: impact always works against the trader.
                fill_price = price[i, k] * (1.0 - sigma[i] * impact_bps * 1e-4)
                filled += q
                spent += q * fill_price
                concentration += (q / quantity[i]) ** 2
                minute_fills[i, k] = q
        remaining[i] -= filled
        if forced_minute >= 0:
            remaining[i] = 0.0  # exact: the forced minute took want - filled, i.e. all that was left
        executed[i] += filled
        cash[i] += spent
        out_qty[i] = filled
        out_pa_bps[i] = sigma[i] * (spent / twap_price[i] - filled) / quantity[i] * 1e4
        out_concentration_minute[i] = concentration
