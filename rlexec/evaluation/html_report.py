"""One self-contained HTML page for a run folder: what ran (config), where and from which code
(provenance), what came out (tables and plots) and which files hold it.

Any run folder renders: an ``evaluate`` run shows its results and comparison tables and plots, a
``train`` run its return per iteration (a plot and a table), its checkpoints and final figures; a kind
this module does not know shows its records, images and files. The page needs no network and no
other file: styles are inline, images are embedded PNGs (``data:`` URIs). Built with the standard
library's ``html`` escaping only.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rlexec.envs.config import ExecutionConfig
from rlexec.errors import ConfigError
from rlexec.evaluation import tables
from rlexec.evaluation.plots import figure_png, training_curve_figure
from rlexec.evaluation.run_folders import read_json, read_progress, require_run_folder, run_kind
from rlexec.evaluation.tables import TextTable

# progress.jsonl columns shown in a train run's table, where logged
PROGRESS_COLUMNS = ("iteration", "episode_return_mean", "evaluation_return_mean", "episode_len_mean",
                    "env_steps_sampled_lifetime", "env_steps_per_s", "time_this_iter_s")
MAX_PROGRESS_ROWS = 200  # a long run's table shows its last iterations; the plot shows all

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1150px; margin: 2em auto;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 2em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } td:first-child, th:first-child, table.text td { text-align: left; }
td small { color: #666; }
p.legend { font-size: 0.85em; color: #444; max-width: 60em; }
pre { background: #f7f7f7; border: 1px solid #e4e4e4; padding: 0.7em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def html_table(table: TextTable, *, numbers: bool = True) -> str:
    """A :class:`TextTable` as HTML; a row label's second line (a policy's budget) in small type.
    ``numbers``: right-align the cells after the first (False: a table of text, all left)."""
    head = "".join(f"<th>{_e(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        first, *rest = row
        label, _, note = first.partition("\n")
        cell = _e(label) + (f"<br><small>{_e(note)}</small>" if note else "")
        body.append(f"<tr><td>{cell}</td>" + "".join(f"<td>{_e(c)}</td>" for c in rest) + "</tr>")
    legend = f'<p class="legend">{_e(table.caption)}</p>' if table.caption else ""
    kind = "" if numbers else ' class="text"'
    return (f"<table{kind}><caption>{_e(table.title)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>{legend}")


def _key_values(title: str, items: Iterable[tuple[str, Any]]) -> str:
    rows = [(key, value if isinstance(value, str) else json.dumps(value, default=str)) for key, value in items
            if value not in (None, "", [], {})]
    return html_table(TextTable(title, ("field", "value"), tuple(rows)), numbers=False) if rows else ""


def png_figure(data: bytes, alt: str, caption: str = "") -> str:
    encoded = base64.b64encode(data).decode("ascii")
    note = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{encoded}">{note}</figure>'


def _section(title: str, *parts: str) -> str:
    body = "".join(p for p in parts if p)
    return f"<section><h2>{_e(title)}</h2>{body}</section>" if body else ""


# ---- kinds -------------------------------------------------------------------------------------------
def _evaluate_sections(summary: dict[str, Any]) -> list[str]:
    results = html_table(tables.results(summary))
    comparison = html_table(tables.comparison(summary)) if summary.get("paired_vs_baseline") else ""
    policies = summary.get("trained_policies") or {}
    trained = html_table(TextTable(
        "Trained policies: the checkpoint each --policy resolved to",
        ("policy", "checkpoint", "training run's git commit", "budget"),
        tuple((name.upper(), p.get("checkpoint") or "", p.get("git_commit") or "unknown", p.get("budget", ""))
              for name, p in policies.items()),
    ), numbers=False) if policies else ""
    return [_section("Results", results, comparison, trained)]


def _reward_unit(config: dict[str, Any]) -> str:
    """The unit of a training run's episode return, from its environment section."""
    environment = config.get("environment") or {}
    env = environment.get("env", "bar")
    if env == "lob":
        return tables.LOB_REWARD_UNIT
    if env != "bar":  # an env class of the user's: its reward is its own
        return ""
    try:
        execution = ExecutionConfig.from_dict((environment.get("env_config") or {}).get("execution") or {})
    except (ConfigError, TypeError, ValueError):
        return ""
    return tables.bar_reward_note(execution.reward).unit


def _train_sections(run_dir: Path, record: dict[str, Any]) -> list[str]:
    progress = read_progress(run_dir)
    config = record.get("config") or {}
    environment = config.get("environment") or {}
    label = f"{config.get('algorithm', 'training')} '{config.get('name', run_dir.parent.name)}' on the " \
            f"{environment.get('env', 'bar')} env, seed {record.get('seed', config.get('seed', '?'))}"
    unit = _reward_unit(config)
    curve = png_figure(figure_png(training_curve_figure(progress, label, unit)), "mean episode return per iteration",
                       f"{len(progress)} iterations logged in progress.jsonl")
    columns = [c for c in PROGRESS_COLUMNS if any(c in line for line in progress)]
    shown = progress[-MAX_PROGRESS_ROWS:]
    rows = tuple(tuple(_number(line.get(c)) for c in columns) for line in shown)
    title = "progress.jsonl" + (f" (last {len(shown)} of {len(progress)} iterations)" if len(shown) < len(progress)
                                else f" ({len(progress)} iterations)")
    progress_table = html_table(TextTable(title, tuple(columns), rows)) if columns else \
        "<p>No iteration finished yet (progress.jsonl is empty or missing).</p>"
    summary = read_json(run_dir / "summary.json") or {}
    last = summary.get("last") or {}
    final = _key_values("summary.json", [("iterations", summary.get("iterations")),
                                         ("final checkpoint", summary.get("checkpoint")),
                                         *((f"last: {k}", _number(v)) for k, v in last.items()),
                                         ("after_training", summary.get("after_training"))])
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob("iter_*")) \
        if (run_dir / "checkpoints").is_dir() else []
    listing = _key_values("Checkpoints", [("kept", ", ".join(checkpoints)),
                                          ("latest.json", read_json(run_dir / "checkpoints" / "latest.json"))])
    return [_section("Training", f'<p class="sub">{_e(label)}; episode return in {_e(unit or "the env reward")}</p>',
                     curve, progress_table, final, listing)]


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


# ---- common parts ------------------------------------------------------------------------------------
def _images(run_dir: Path) -> str:
    return "".join(png_figure(path.read_bytes(), path.stem.replace("_", " "), path.name)
                   for path in sorted(run_dir.glob("*.png")))


def _config(run_dir: Path, record: dict[str, Any]) -> str:
    parts = []
    if "config" in record:
        parts.append("<p>run.json <code>config</code>:</p><pre>"
                     f"{_e(json.dumps(record['config'], indent=2, default=str))}</pre>")
    if (run_dir / "config.yaml").is_file():
        parts.append(f"<p>config.yaml:</p><pre>{_e((run_dir / 'config.yaml').read_text())}</pre>")
    return _section("Config", *parts)


def _provenance(record: dict[str, Any]) -> str:
    command = record.get("command")
    run = _key_values("run.json", [
        ("git commit", record.get("git_commit")), ("seed", record.get("seed")),
        ("config hash", record.get("config_hash")), ("started (UTC)", record.get("started_utc")),
        ("host", record.get("host")), ("command", " ".join(command) if isinstance(command, list) else command),
        ("ray", record.get("ray")), ("source", record.get("source")),
    ])
    versions = _key_values("Package versions", (record.get("versions") or {}).items())
    return _section("Provenance", run or "<p>No run.json in this folder.</p>", versions)


def _size(path: Path) -> str:
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
        return f"folder, {len(files)} files, {sum(p.stat().st_size for p in files):,} bytes"
    return f"{path.stat().st_size:,} bytes"


def _files(run_dir: Path) -> str:
    rows = tuple((p.name + ("/" if p.is_dir() else ""), _size(p)) for p in sorted(run_dir.iterdir())
                 if not p.name.endswith(".partial"))
    return _section("Files", html_table(TextTable(str(run_dir.resolve()), ("file", "size"), rows), numbers=False))


def build_report(run_dir: str | os.PathLike) -> str:
    """The HTML page of ``run_dir`` (see the module docstring)."""
    run_dir = require_run_folder(run_dir)
    kind = run_kind(run_dir)
    record = read_json(run_dir / "run.json") or {}
    sections = []
    if kind == "evaluate":
        summary = read_json(run_dir / "summary.json") or {}
        record = record or summary
        sections += _evaluate_sections(summary)
    elif kind == "train":
        sections += _train_sections(run_dir, record)
    else:  # simulate, and kinds this module does not know: their JSON records as they are
        for path in sorted(run_dir.glob("*.json")):
            if path.name != "run.json":
                sections.append(_section(path.name, f"<pre>{_e(path.read_text())}</pre>"))
    sections.append(_section("Plots", _images(run_dir)))
    sections += [_config(run_dir, record), _provenance(record), _files(run_dir)]
    title = f"rlexec {kind} run {run_dir.name}"
    commit = record.get("git_commit", "unknown")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{_e(title)}</h1><p class=\"sub\">{_e(run_dir.resolve())} · git {_e(commit)}</p>"
            + "".join(s for s in sections if s) + "</body></html>\n")
