"""``rlexec figures``: issue 10's figures, redrawn from finished run folders.

``training RUN`` (a MoE-DPO ``rlexec train`` run; drawn after every run anyway), ``episode STORE``
(one episode's gate weights and posterior responsibilities, from ``rlexec regimes --store``) and
``volatility RUN`` (profit and cost against the volatility_ramp level, from ``rlexec regimes``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "figures",
        help="draw MoE-DPO's figures (training dynamics, gate per regime, one episode) and the volatility sweep",
        description="Redraw issue 10's figures from finished run folders, as PNGs next to the data they show. "
        "See docs/moe_dpo.md (Figures) and docs/regimes.md (Volatility levels).",
    )
    kinds = p.add_subparsers(dest="figure", required=True)
    training = kinds.add_parser(
        "training", help="log-probability dynamics and gate weights per regime of a MoE-DPO training run",
        description="Write RUN/logp_dynamics.png (per expert, the mean log-probability of preferred and rejected "
        "actions over the iterations) and RUN/gate_by_regime.png (the trained gate's mean weights over the "
        "preference set's contexts of each regime).")
    training.add_argument("run", metavar="RUN", help="an `rlexec train` run folder of algorithm moe_dpo")
    training.set_defaults(func=_training)

    episode = kinds.add_parser(
        "episode", help="one episode's gate weights and posterior responsibility of each expert over time",
        description="From the trajectory store of `rlexec regimes --store` with a kind: moe_dpo row: the gate "
        "weights w_k(x) (fixed at the window start) and p(k | s_1..t, a_1..t) ∝ w_k(x) prod pi_k(a_u|s_u) "
        "after each decision, drawn into STORE/../gate_<policy>_<regime>_<episode>.png.")
    episode.add_argument("store", metavar="STORE", help="a regimes run folder or its store/ folder")
    episode.add_argument("--policy", required=True, help="the kind: moe_dpo row's name")
    episode.add_argument("--regime", required=True, help="one of the run's regimes")
    episode.add_argument("--episode", type=int, default=0, help="episode row of the regime, from 0 (default 0)")
    episode.add_argument("--run", help="the trained MoE-DPO run (default: the row's run in the store's config)")
    episode.add_argument("--out", help="PNG path (default: next to the store)")
    episode.set_defaults(func=_episode)

    volatility = kinds.add_parser(
        "volatility", help="profit and execution cost per policy against the volatility_ramp level",
        description="From a `rlexec regimes` run over several volatility_ramp levels (configs/regimes_volatility.yaml): "
        "RUN/volatility_levels.png, mean ± SE per policy and level.")
    volatility.add_argument("run", metavar="RUN", help="an `rlexec regimes` run folder (per_episode.parquet)")
    volatility.set_defaults(func=_volatility)


def _training(args: argparse.Namespace) -> int:
    from rlexec.algorithms.moe_dpo.plots import training_figures

    for path in training_figures(args.run).values():
        print(path)
    return 0


def _episode(args: argparse.Namespace) -> int:
    from rlexec.algorithms.moe_dpo.plots import episode_gate_figure, episode_gate_trace
    from rlexec.evaluation.plots import save_figure

    store = Path(args.store)
    store = store / "store" if (store / "store").is_dir() else store
    trace = episode_gate_trace(store, args.policy, args.regime, args.episode, run=args.run)
    out = Path(args.out) if args.out else store.parent / f"gate_{args.policy}_{args.regime}_{args.episode}.png"
    print(save_figure(episode_gate_figure(trace, f"store {store}, run {trace['run']}"), out))
    return 0


def _volatility(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from rlexec.errors import ConfigError
    from rlexec.evaluation.plots import save_figure, volatility_levels_figure

    table = Path(args.run) / "per_episode.parquet"
    if not table.is_file():
        raise ConfigError(f"{table}: missing; pass an `rlexec regimes` run folder")
    print(save_figure(volatility_levels_figure(pq.read_table(table), f"run {args.run}"),
                      Path(args.run) / "volatility_levels.png"))
    return 0
