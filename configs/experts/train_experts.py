"""Train several broker experts one after another in one Ray session (issue 9).

    PYTHONPATH=$PWD nice -n 10 python configs/experts/train_experts.py configs/experts/*.yaml --out runs/experts

Each YAML is exactly what ``rlexec train <yaml> --local --out <out>`` runs (same runner, same run
folder layout); this only saves starting Ray once per expert (several seconds each on a busy
machine). ``--local`` (default) samples with RLlib's EnvRunner in the driver, one process;
``--no-local`` uses the configs' remote EnvRunners. ``<out>/experts_index.json`` lists, per YAML,
the run folder, its exported expert, the wall time and the export figures, rewritten after each expert.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--out", default="runs/experts")
    parser.add_argument("--local", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    from rlexec.training.runner import init_ray, train
    from rlexec.training.spec import TrainSpec

    init_ray(local=args.local)
    index_path = Path(args.out) / "experts_index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    for config in args.configs:
        spec = TrainSpec.from_yaml(config)
        started = time.time()
        try:
            run_dir = train(spec, out=args.out, local=args.local)
        except Exception as exc:  # one failed expert must not stop the others; the index says what happened
            index[spec.name] = {"config": config, "error": f"{type(exc).__name__}: {exc}"}
        else:
            summary = json.loads((run_dir / "summary.json").read_text())
            index[spec.name] = {"config": config, "run_dir": str(run_dir), "expert": str(run_dir / "expert"),
                                "wall_s": round(time.time() - started, 1), "iterations": summary["iterations"],
                                "after_training": summary.get("after_training")}
        index_path.parent.mkdir(parents=True, exist_ok=True)
        index_path.write_text(json.dumps(index, indent=2))
        print(json.dumps({spec.name: index[spec.name]}), flush=True)


if __name__ == "__main__":
    main()
