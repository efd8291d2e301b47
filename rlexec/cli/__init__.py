"""The ``rlexec`` command line.

Every ``rlexec/cli`` module imports only light modules at its top, so that ``rlexec --help`` and
``rlexec <command> --help`` answer at once: torch, Ray, numba, matplotlib and the packages that load
them are imported inside the functions that run a command.
"""

from rich.console import Console

# The names the parsers offer. Their owners (rlexec.market.regimes behind a package that compiles
# numba kernels and loads matplotlib; rlexec.policies.actors, which imports torch;
# rlexec.data.loaders, which imports pyarrow) are too heavy to import for a help text;
# tests/cli/test_cli_help.py checks that these equal the originals.
REGIMES = ("baseline", "open", "close", "midday", "bullish", "bearish", "illiquid", "liquid", "volatility_ramp")
ACTOR_KINDS = ("greedy", "sampled", "expected")
LABELS = ("auto", "end", "start")
LOGICQ_VARIANTS = ("without_sketch", "logicq", "ensemble")  # rlexec.logicq.study.VARIANTS


def make_console() -> Console:
    """Rich console; when output is not a terminal (logs, CI) it is 120 columns wide so tables do not wrap."""
    return Console(width=None if Console().is_terminal else 120)


def checked_regime(name: str) -> str:
    """``--regime``: a preset of :data:`REGIMES` or a levelled one (``volatility_ramp@2``); else a one-line error."""
    from rlexec.errors import ConfigError
    from rlexec.market.regimes import split_regime

    try:
        split_regime(name)
    except ConfigError as exc:
        raise ConfigError(f"--{exc}") from None  # split_regime says "regime: ...", so this reads "--regime: ..."
    return name


def split_preset(name: str):
    """``--split NAME``: the :class:`~rlexec.data.splits.DataSplit` preset, or a one-line error naming the choices."""
    from rlexec.data.splits import PRESETS, DataSplit
    from rlexec.errors import ConfigError

    if name not in PRESETS:
        raise ConfigError(f"--split: unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return DataSplit.from_dict({"preset": name})


def check_same_execution(policies, execution, reference: str) -> None:
    """Every ``--policy`` must have been trained on ``execution`` (one MDP per table); ``reference`` names its source."""
    from rlexec.errors import ConfigError

    mismatched = [p.name for p in policies if p.execution != execution]
    if mismatched:
        raise ConfigError(f"--policy: {mismatched} trained with execution settings that differ from {reference}; "
                          "evaluate them separately")
