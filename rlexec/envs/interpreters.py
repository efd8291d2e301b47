"""State interpreters (ExecState -> observation) and action interpreters ((action, ExecState) -> fraction of Q).

Observation layout (float32, one row per order)::

    [0] remaining fraction of Q      [1] elapsed fraction of the horizon      [2] side sigma (+1 sell, -1 buy)
    [3:] public block: (lookback + horizon) minutes x 6 features, minute-major

The six public features of a minute are :func:`rlexec.envs.engine.window_features`: open, high,
low, close and typical price as percent deviations from the reference price ``p_0`` (the last close
before the start), and ``log1p(volume / mean minute volume of the previous session)``.
The **student** sees public minutes only once they have closed (the rest are 0); the **oracle**
(teacher, OPD's ``whole_day``) sees the whole window, future included.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from rlexec.envs.config import ExecutionConfig
from rlexec.envs.engine import NUM_PUBLIC_FEATURES, ExecState, OrderBatch
from rlexec.errors import ConfigError

NUM_PRIVATE_FEATURES = 3


@dataclass(frozen=True)
class ObservationLayout:
    """Where each part of the flat observation lives, for models that split it back up."""

    lookback_minutes: int
    horizon_minutes: int

    @property
    def window_minutes(self) -> int:
        return self.lookback_minutes + self.horizon_minutes

    @property
    def private(self) -> slice:
        return slice(0, NUM_PRIVATE_FEATURES)

    @property
    def public(self) -> slice:
        return slice(NUM_PRIVATE_FEATURES, self.size)

    @property
    def size(self) -> int:
        return NUM_PRIVATE_FEATURES + self.window_minutes * NUM_PUBLIC_FEATURES


class ObservationInterpreter:
    """ExecState -> (N, layout.size) float32 observations, student (past only) or oracle (whole window).

    The public block is filled incrementally: each call copies only the bars that closed since the
    previous call for the same episode, which keeps the batch path fast. The result depends only on
    the state, never on the call history.
    """

    def __init__(self, config: ExecutionConfig, *, oracle: bool = False):
        self.layout = ObservationLayout(config.lookback_minutes, config.horizon_minutes)
        self.oracle = oracle
        self._batch: OrderBatch | None = None
        self._features: np.ndarray | None = None
        self._buffer: np.ndarray | None = None
        self._revealed = 0

    def space(self) -> gym.spaces.Box:
        return gym.spaces.Box(-np.inf, np.inf, shape=(self.layout.size,), dtype=np.float32)

    def __call__(self, state: ExecState) -> np.ndarray:
        batch = state.batch
        if batch is not self._batch:
            self._start_episode(batch)
        visible = self.layout.window_minutes if self.oracle else state.visible_minutes
        # A view taken per call (not stored): a pickled or copied interpreter keeps writing into its own buffer.
        public = self._buffer[:, NUM_PRIVATE_FEATURES:].reshape(len(batch), -1, NUM_PUBLIC_FEATURES)
        if visible < self._revealed:  # a new episode over the same batch: hide the future again
            public[:, visible:] = 0.0
        elif visible > self._revealed:
            public[:, self._revealed : visible] = batch.public_features[:, self._revealed : visible]
        self._revealed = visible
        self._buffer[:, 0] = state.remaining / batch.quantity
        self._buffer[:, 1] = state.t / state.config.n_steps
        return self._buffer

    def _start_episode(self, batch: OrderBatch) -> None:
        self._batch = batch
        self._buffer = np.zeros((len(batch), self.layout.size), dtype=np.float32)
        self._buffer[:, 2] = batch.sigma
        self._revealed = 0


def twap_pace_fractions(multipliers: np.ndarray, state: ExecState) -> np.ndarray:
    """Fractions of Q that trade ``multipliers`` times the TWAP pace of what remains.

    TWAP pace = ``remaining / steps_left``: spreading what is left evenly over the steps left. As a
    fraction of Q (what the engine takes): ``m * remaining / (steps_left * Q)``. With ``m = 1`` every
    step this is ``1 / n_steps`` of Q each step, i.e. TWAP; the last step trades the remainder anyway.
    """
    steps_left = max(state.n_steps - state.t, 1)  # a finished episode: the engine refuses the step
    return multipliers * state.remaining / (steps_left * state.batch.quantity)


class DiscreteActionInterpreter:
    """(action index, state) -> fractions of Q, from ``config.action_values``.

    ``config.action_interpreter`` gives the values their meaning: ``"fraction"`` (OPD: {0, .25, .5,
    .75, 1} of Q) or ``"twap_relative"`` (multiples of the TWAP pace of what remains, see
    :func:`twap_pace_fractions`). The single env and the batch path (evaluation) both call this, so
    an action means the same on both.
    """

    def __init__(self, config: ExecutionConfig):
        self.values = np.asarray(config.action_values, dtype=np.float64)
        self.twap_relative = config.action_interpreter == "twap_relative"
        self._single = [self.values[i : i + 1] for i in range(len(self.values))]

    def space(self) -> gym.spaces.Discrete:
        return gym.spaces.Discrete(len(self.values))

    def __call__(self, action, state: ExecState) -> np.ndarray:
        values = self._values(action)
        return twap_pace_fractions(values, state) if self.twap_relative else values

    def _values(self, action) -> np.ndarray:
        if isinstance(action, (int, np.integer)):  # the single env's path, kept free of array work
            if not 0 <= action < len(self._single):
                raise ValueError(f"action index must be in [0, {len(self._single)}), got {action!r}")
            return self._single[action]
        index = np.asarray(action, dtype=np.int64).reshape(-1)
        if np.any((index < 0) | (index >= len(self.values))):
            raise ValueError(f"action index must be in [0, {len(self.values)}), got {action!r}")
        return self.values[index]


class ContinuousActionInterpreter:
    """A fraction of Q in [0, 1], clipped (the state is not needed; taken for the common signature)."""

    def space(self) -> gym.spaces.Box:
        return gym.spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)

    def __call__(self, action, state: ExecState | None = None) -> np.ndarray:
        fraction = np.asarray(action, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(fraction)):
            raise ValueError(f"continuous action must be finite, got {action!r}")
        return np.clip(fraction, 0.0, 1.0)


def action_interpreter(config: ExecutionConfig, *, continuous: bool = False):
    """The action interpreter of an env or batch over ``config``: call it as ``interpret(action, state)``."""
    if not continuous:
        return DiscreteActionInterpreter(config)
    if config.action_interpreter != "fraction":
        raise ConfigError(
            f"ExecutionConfig.action_interpreter {config.action_interpreter!r} needs discrete actions; "
            "continuous actions are fractions of Q (action_interpreter 'fraction')")
    return ContinuousActionInterpreter()
