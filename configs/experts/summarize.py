"""Print the training figures of the experts in experts_index.json files as a markdown table (issue 9 report).

    python configs/experts/summarize.py runs/experts/chain_*/experts_index.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
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
