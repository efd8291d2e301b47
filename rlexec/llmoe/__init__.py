"""LLMoE (spec §4): a router sends each trading day, from a 5-day window of price features and that
window's news text, to an optimistic or a pessimistic expert; the chosen expert's prediction drives an
all-in / all-out long-only trade at the close.

Modules: :mod:`.data` (prices, text alignment, :class:`~.data.DayWindow`, splits), :mod:`.features`
(the 55 features), :mod:`.routers` (one interface, numeric / text-embedding / LLM routers),
:mod:`.cache` (routes cached to parquet), :mod:`.experts` (the feed-forward experts and the MLP/LSTM
baselines), :mod:`.backtest` (all-in / all-out and the TR/SR/MDD/CR metrics), :mod:`.pipeline`
(route -> train experts -> backtest from one config; ``rlexec llmoe``).
"""
