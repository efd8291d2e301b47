"""The shared LOB action ids of the broker experts, as the shared-action contract (issue 9) fixes them.

STAND-IN until the ``experts`` branch lands ``rlexec.envs.lob_interpreters.shared_action`` and
``decode_shared_action``; then this module only re-exports those. ``0 = hold``;
``1 + 2 b + 0`` = market order of size bucket b; ``1 + 2 b + 1`` = limit order at the near touch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlexec.envs.lob_interpreters import HOLD, LIMIT, MARKET

HOLD_ACTION = 0
SIZE_MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)


def shared_action(bucket: int, placement: int) -> int:
    if placement not in (MARKET, LIMIT) or bucket < 0:
        raise ValueError(f"a shared action needs a bucket >= 0 and placement market/limit, got {bucket}, {placement}")
    return 1 + 2 * int(bucket) + (0 if placement == MARKET else 1)


def decode_shared_action(action: int, num_buckets: int = len(SIZE_MULTIPLIERS)) -> tuple[int | None, int]:
    """``action -> (bucket, placement)``; hold is ``(None, HOLD)``."""
    if not 0 <= action <= 2 * num_buckets:
        raise ValueError(f"shared action must be in [0, {2 * num_buckets}], got {action}")
    if action == HOLD_ACTION:
        return None, HOLD
    bucket, market_or_limit = divmod(action - 1, 2)
    return bucket, (MARKET, LIMIT)[market_or_limit]


def nearest_bucket(multiplier: float, multipliers: Sequence[float] = SIZE_MULTIPLIERS) -> int:
    """The bucket whose multiplier is nearest in log space (ties: the smaller)."""
    return int(np.argmin(np.abs(np.log(np.asarray(multipliers, dtype=np.float64)) - np.log(multiplier))))
