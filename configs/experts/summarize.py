"""Print the training figures of the experts in experts_index.json files as a markdown table (issue 9 report);
with ``--eval`` CSVs of quick_eval.py, the paired comparison table.

    python configs/experts/summarize.py runs/experts/chain_*/experts_index.json
    PYTHONPATH=$PWD python configs/experts/summarize.py --eval runs/experts/quick_eval_*.csv
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def eval_table(paths: list[str]) -> None:
    import csv

    import numpy as np

    from rlexec.evaluation.stats import paired_difference

    rows = [row for path in paths for row in csv.DictReader(open(path))]
    cells: dict = {}
    for row in rows:
        cells.setdefault((row["regime"], row["broker"]), {}).setdefault(row["policy"], []).append(
            (int(row["seed"]), float(row["pa_bps"]), float(row["fill_rate"])))
    print("| regime | broker | n | PA expert (bp) | expert - always-market | expert - always-limit "
          "| fill rate expert / market / limit |")
    print("|---|---|---|---|---|---|---|")
    for (regime, broker), by_policy in sorted(cells.items()):
        arrays = {k: np.array(sorted(v)) for k, v in by_policy.items()}
        expert = arrays["expert"]
        diffs = [paired_difference(expert[:, 1], arrays[b][:, 1]) for b in ("market", "limit")]
        text = [f"{d.mean:+.2f} [{d.low:+.2f}, {d.high:+.2f}]{' *' if d.low > 0 else ''}" for d in diffs]
        fills = " / ".join(f"{arrays[k][:, 2].mean():.4f}" for k in ("expert", "market", "limit"))
        print(f"| {regime} | {broker} | {len(expert)} | {expert[:, 1].mean():+.2f} | {text[0]} | {text[1]} | {fills} |")


def main() -> None:
    if sys.argv[1:2] == ["--eval"]:
        eval_table(sys.argv[2:])
        return
    rows = {}
    for path in sys.argv[1:]:
        rows.update(json.loads(Path(path).read_text()))
    print("| expert | episodes | iterations | wall s (train + export) | states visited (of 450) | (s,a) pairs trained "
          "| mean updates per pair | tau | greedy mass on visited | expert folder |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, entry in sorted(rows.items(), key=lambda kv: (kv[0].split("_", 2)[2], kv[0])):
        if "error" in entry:
            print(f"| {name} | failed: {entry['error']} |")
            continue
        lines = [json.loads(line) for line in Path(entry["run_dir"], "progress.jsonl").read_text().splitlines()]
        last = [line for line in lines if "env_steps_sampled_lifetime" in line][-1]
        episodes = round(last["env_steps_sampled_lifetime"] / last["episode_len_mean"])
        a = entry["after_training"]
        print(f"| {name} | {episodes} | {entry['iterations']} | {entry['wall_s']:.0f} | {a['num_states_visited']} "
              f"| {a['state_action_pairs_trained']} | {a['mean_updates_per_trained_pair']:.1f} | {a['temperature']:.2g} "
              f"| {a['greedy_mass_visited']:.3f} | {entry['expert']} |")


if __name__ == "__main__":
    main()
