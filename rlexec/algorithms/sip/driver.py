"""Fit SIP weights per regime from the experts' own episodes, fit the gate, save both (spec 1.3).

For each regime every expert executes the same ``episodes`` training episodes (common random
numbers: episode e of every expert replays seed ``seed_start + e``) through rlexec's evaluation loop.
The default ``seed_start`` (500,000) keeps them disjoint from evaluation seeds, which start at 0
(``rlexec evaluate --seed``). Each episode's price advantage A and fill rate FR per expert become
utilities ``u_k = A_k - lambda_F (1 - FR_k)``; SIP runs over the episodes in seed order from uniform
weights, one weight vector per regime. The gate is then fitted on (context of episode, SIP weights)
pairs of all regimes.

Run folder (``<out>/sip/<name>/<time>-<hash>/``, ``rlexec sip CONFIG --out``):

* ``run.json``: the config and provenance;
* ``episodes.parquet``: one row per (regime, episode): seed, ``advantage_<k>``, ``fill_rate_<k>``,
  ``utility_<k>``, ``score_<k>``, the context features;
* ``weights.parquet``: one row per (regime, episodes seen = 0..N): ``w_<k>`` (row 0 is the prior),
  ``lambda``, ``target``, ``constraint_met``: the weights over episodes that the regimes table plots;
* ``weights.json``: each regime's final weights (:func:`load_weights`);
* ``gate/``: the :class:`~rlexec.algorithms.sip.gate.Gate` (``Gate.load``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlexec.algorithms.sip import update as sip
from rlexec.algorithms.sip.gate import Gate, GateConfig, context_features, context_names, fit_gate
from rlexec.algorithms.sip.mixture import EpisodeDrawMixture
from rlexec.configs import config_from_dict, read_yaml_mapping
from rlexec.errors import ConfigError
from rlexec.provenance import is_plain_name

ACTORS = ("greedy", "sampled")
ADVANTAGE_METRICS = ("arrival_advantage_bps", "price_advantage_bps")
WEIGHTS_JSON = "weights.json"


@dataclass(frozen=True, kw_only=True)
class SIPRunConfig:
    """``rlexec sip CONFIG``: what to fit on. Values are rlexec's [DEFAULT]s unless spec 1.3 is cited."""

    name: str = "sip"
    experts: dict[str, str] | list[str]  # name -> ExpertPolicy folder ("{regime}", "{expert}" filled in), or names
    experts_index: str | list[str] | None = None  # experts_index.json file(s) of configs/experts/train_experts.py
    regimes: tuple[str, ...] = ("baseline",)
    environment: dict[str, Any] = field(default_factory=dict)  # LOBExecutionConfig fields; "regime" is set per regime
    episodes: int = 200  # training episodes per regime and expert
    seed_start: int = 500_000  # first episode seed; evaluation seeds start at 0, so keep this far above
    actor: str = "greedy"  # how each expert acts while being scored: greedy (its mode) or sampled from pi_k
    advantage_metric: str = "arrival_advantage_bps"  # spec 1.2's A (vs arrival); or PA vs the window TWAP
    sip: sip.SIPConfig = field(default_factory=sip.SIPConfig)
    gate: GateConfig = field(default_factory=GateConfig)

    def __post_init__(self) -> None:
        if not is_plain_name(self.name):
            raise ConfigError(f"name must be a plain name (letters, digits, . _ -), got {self.name!r}")
        if not isinstance(self.experts, (dict, list)) or len(self.experts) < 2:
            raise ConfigError(f"experts: at least 2 experts needed (name: folder, or names with experts_index), "
                              f"got {self.experts!r}")
        if isinstance(self.experts, list) and self.experts_index is None:
            raise ConfigError("experts: a list of names needs experts_index (or give name: folder)")
        if not self.regimes or len(set(self.regimes)) != len(self.regimes):
            raise ConfigError(f"regimes: a list of distinct regime names needed, got {list(self.regimes)}")
        checks = {"episodes": self.episodes >= 1, "seed_start": self.seed_start >= 0, "actor": self.actor in ACTORS,
                  "advantage_metric": self.advantage_metric in ADVANTAGE_METRICS}
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"{name}: invalid value {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<config>") -> SIPRunConfig:
        try:
            return config_from_dict(cls, data, converters={
                "regimes": _names, "experts": _experts, "sip": _section(sip.SIPConfig), "gate": _section(GateConfig)})
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        except TypeError as exc:  # a required field (experts) is missing
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> SIPRunConfig:
        return cls.from_dict(read_yaml_mapping(path), source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "regimes": list(self.regimes), "sip": self.sip.to_dict(),
                "gate": self.gate.to_dict()}

    @property
    def expert_names(self) -> list[str]:
        return list(self.experts)

    def expert_paths(self, regime: str) -> dict[str, str]:
        """Each expert's folder in ``regime``: from ``experts_index`` (entry ``expert_<name>_<regime>``) if
        given, else the ``experts`` mapping with ``{regime}`` and ``{expert}`` filled in."""
        if self.experts_index is None:
            return {name: str(path).replace("{regime}", regime).replace("{expert}", name)
                    for name, path in self.experts.items()}
        files = [self.experts_index] if isinstance(self.experts_index, str) else list(self.experts_index)
        index = {key: (file, entry) for file in files for key, entry in _read_index(file).items()}
        paths = {}
        for name in self.expert_names:
            file, entry = index.get(f"expert_{name}_{regime}", (files[0], None))
            if not isinstance(entry, dict) or "expert" not in entry:
                why = f" ({entry['error']})" if isinstance(entry, dict) and "error" in entry else ""
                raise ConfigError(f"{file}: no trained expert 'expert_{name}_{regime}'{why}")
            paths[name] = _index_path(entry["expert"], file)
        return paths


def _index_path(path: str, index_file: str) -> str:
    """An index entry's folder: as written if it exists from here, else relative to the first folder above the
    index where it exists (train_experts.py writes paths relative to the directory it ran in)."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return str(candidate)
    for folder in Path(index_file).resolve().parents:
        if (folder / candidate).exists():
            return str(folder / candidate)
    return str(candidate)


def _read_index(path: str) -> dict[str, Any]:
    import json

    try:
        index = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: experts index not found") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable experts index ({exc})") from None
    if not isinstance(index, dict):
        raise ConfigError(f"{path}: the experts index must map run names to entries")
    return index


def _section(cls):
    return lambda value: cls.from_dict(value) if isinstance(value, dict) or value is None else value


def _experts(value):
    return dict(value) if isinstance(value, dict) else list(value) if isinstance(value, (list, tuple)) else value


def _names(value) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class RegimeFit:
    regime: str
    seeds: np.ndarray  # (N,)
    advantage: np.ndarray  # (N, K) bp
    fill_rate: np.ndarray  # (N, K)
    utility: np.ndarray  # (N, K)
    history: sip.History
    context: np.ndarray  # (N, d)


@dataclass(frozen=True)
class Scores:
    advantage: np.ndarray  # (N, K) bp; 0 where an expert filled nothing (spec 1.3: u = -lambda_F then)
    fill_rate: np.ndarray  # (N, K)
    first_observations: np.ndarray  # (N, d) what every episode showed before its first decision
    observation_names: list[str]
    identity: dict[str, list]  # the episodes' identity columns (seed, side, quantity, window_start_s, ...)


class _FirstObservations:
    """Recorder stand-in for the evaluation loop: keeps the observations of step 0 only."""

    def __init__(self):
        self.first: np.ndarray | None = None

    def start(self) -> None:
        self.first = None

    def record(self, observations, actions, step) -> None:
        if self.first is None:
            self.first = np.array(observations, dtype=np.float64)


def score_experts(experts: dict[str, Any], make_episodes: Callable[[], Any], *, actor: str, seed: int,
                  advantage_metric: str) -> Scores:
    """Every expert on the same episodes through the evaluation loop: (N, K) advantage and fill rate, and the
    episodes' context (their first observations and identity, read off the first expert's run)."""
    from rlexec.evaluation.runner import Run, evaluate_runs

    built = []

    def make():
        built.append(make_episodes())
        return built[-1]

    runs = [Run(name, EpisodeDrawMixture([1.0], [expert], seed=seed, within=actor, name=name), make)
            for name, expert in experts.items()]
    first = _FirstObservations()
    evaluation = evaluate_runs(runs, recorders={runs[0].name: first})
    advantage = np.stack([evaluation.result(n).metrics[advantage_metric] for n in experts], axis=1)
    fill = np.stack([evaluation.result(n).metrics["fill_rate"] for n in experts], axis=1)
    advantage = np.where((fill == 0) & np.isnan(advantage), 0.0, advantage)  # no fill: no price, A = 0
    return Scores(advantage, fill, first.first, _observation_names(built[0]), evaluation.orders.to_pydict())


def fit_regime(regime: str, experts: dict[str, Any], make_episodes: Callable[[], Any], *,
               regimes: Sequence[str], config: SIPRunConfig) -> RegimeFit:
    """One regime: score the experts on common episodes, run SIP over them, read each episode's context.

    ``make_episodes()`` gives fresh :class:`~rlexec.evaluation.episodes.Episodes`; the names of the
    observation columns are their ``observation_names`` or, on the LOB, their envs'.
    """
    scores = score_experts(experts, make_episodes, actor=config.actor, seed=config.seed_start,
                           advantage_metric=config.advantage_metric)
    bad = ~np.isfinite(scores.advantage) | ~np.isfinite(scores.fill_rate)
    if bad.any():
        rows = sorted({int(i) for i in np.argwhere(bad)[:, 0]})
        raise ConfigError(f"regime {regime!r}: non-finite {config.advantage_metric} or fill rate in episode(s) "
                          f"{rows[:10]} (no market price in the window?); SIP needs finite scores")
    utility = sip.utilities(scores.advantage, scores.fill_rate, config.sip.fill_penalty_bps)
    history = sip.run(utility, config.sip)
    context = context_features(scores.first_observations, scores.observation_names, scores.identity, regime,
                               regimes)
    seeds = np.asarray(scores.identity.get("seed", np.arange(len(utility)) + config.seed_start))
    return RegimeFit(regime, seeds, scores.advantage, scores.fill_rate, utility, history, context)


def gate_targets(fits: Sequence[RegimeFit], target: str) -> np.ndarray:
    """Each episode's regression target: its regime's final weights, or the weights after that episode."""
    return np.concatenate([np.tile(f.history.final, (len(f.seeds), 1)) if target == "final"
                           else f.history.weights[1:] for f in fits])


def fit(config: SIPRunConfig, *, load_expert: Callable[[str], Any] | None = None,
        make_episodes: Callable[[dict[str, Any]], Callable[[], Any]] | None = None) -> tuple[list[RegimeFit], Gate]:
    """SIP per regime and the gate. The callables default to saved ExpertPolicy folders and the LOB env
    (tests pass stand-ins): ``load_expert(path)``, ``make_episodes(env_config) -> factory of Episodes``."""
    load_expert = load_expert or _load_expert_policy
    make_episodes = make_episodes or (lambda env: _lob_episodes(env, config.episodes, config.seed_start))
    fits = []
    for regime in config.regimes:
        env_config = {**config.environment, "regime": regime}
        experts = {name: load_expert(path) for name, path in config.expert_paths(regime).items()}
        fits.append(fit_regime(regime, experts, make_episodes(env_config), regimes=config.regimes, config=config))
    features = np.concatenate([f.context for f in fits])
    gate = fit_gate(features, gate_targets(fits, config.gate.target), feature_names=context_names(config.regimes),
                    expert_names=config.expert_names, config=config.gate)
    gate.metadata["regimes"] = list(config.regimes)
    return fits, gate


def save(fits: Sequence[RegimeFit], gate: Gate, config: SIPRunConfig, run_dir: str | Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rlexec.provenance import run_record, write_atomic, write_json_atomic

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    names = config.expert_names
    features = context_names(config.regimes)
    episode_rows: dict[str, list] = {}
    weight_rows: dict[str, list] = {}
    for f in fits:
        n = len(f.seeds)
        columns = {"regime": [f.regime] * n, "episode": list(range(n)), "seed": f.seeds.tolist()}
        for k, name in enumerate(names):
            columns |= {f"advantage_{name}": f.advantage[:, k], f"fill_rate_{name}": f.fill_rate[:, k],
                        f"utility_{name}": f.utility[:, k], f"score_{name}": f.history.scores[:, k]}
        columns |= {feature: f.context[:, j] for j, feature in enumerate(features)}
        _extend(episode_rows, columns)
        weights = {"regime": [f.regime] * (n + 1), "episodes_seen": list(range(n + 1))}
        weights |= {f"w_{name}": f.history.weights[:, k] for k, name in enumerate(names)}
        weights |= {"lambda": np.r_[np.nan, f.history.lambdas], "target": np.r_[np.nan, f.history.targets],
                    "constraint_met": [None, *f.history.constraint_met.tolist()]}
        _extend(weight_rows, weights)
    for file, rows in (("episodes.parquet", episode_rows), ("weights.parquet", weight_rows)):
        table = pa.table(rows)
        write_atomic(run_dir / file, lambda tmp, table=table: pq.write_table(table, tmp))

    def per_regime(values: Callable[[RegimeFit], np.ndarray]) -> dict[str, dict[str, float]]:
        return {f.regime: dict(zip(names, values(f).tolist())) for f in fits}

    write_json_atomic({"experts": names, "mode": config.sip.mode, "weights": per_regime(lambda f: f.history.final),
                       "mean_advantage_bps": per_regime(lambda f: f.advantage.mean(axis=0)),
                       "mean_fill_rate": per_regime(lambda f: f.fill_rate.mean(axis=0))}, run_dir / WEIGHTS_JSON)
    gate.save(run_dir / "gate")
    write_json_atomic(run_record(config.to_dict(), config.seed_start), run_dir / "run.json")
    return run_dir


def load_weights(run_dir: str | Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """(expert names, regime -> final SIP weights) of a ``rlexec sip`` run folder."""
    import json

    path = Path(run_dir) / WEIGHTS_JSON
    try:
        data = json.loads(path.read_text())
        names = list(data["experts"])
        return names, {regime: np.array([w[n] for n in names]) for regime, w in data["weights"].items()}
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (is {run_dir} an rlexec sip run folder?)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable SIP weights ({type(exc).__name__}: {exc})") from None


def _extend(rows: dict[str, list], columns: dict[str, Any]) -> None:
    for key, values in columns.items():
        rows.setdefault(key, []).extend(list(values))


def _load_expert_policy(path: str):
    from rlexec.policies.expert import ExpertPolicy

    return ExpertPolicy.load(path)


def _lob_episodes(env_config: dict[str, Any], episodes: int, seed: int) -> Callable[[], Any]:
    from rlexec.envs.lob_env import LOBExecutionConfig
    from rlexec.evaluation.episodes import LOBEpisodes

    config = LOBExecutionConfig.from_dict(env_config)
    return lambda: LOBEpisodes(config, episodes=episodes, seed=seed)


def _observation_names(episodes: Any) -> Sequence[str]:
    names = getattr(episodes, "observation_names", None)
    return list(names if names is not None else episodes.envs[0].observation_names)
