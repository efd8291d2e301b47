"""Train several broker experts one after another in one Ray session (issue 9).

    PYTHONPATH=$PWD python configs/experts/train_experts.py configs/experts/*.yaml --out runs/experts --nice 10

Each YAML is exactly what ``rlexec train <yaml> --local --out <out>`` runs (same runner, same run
folder layout); this only saves starting Ray once per expert (several seconds each on a busy
machine). ``--local`` (default) samples with RLlib's EnvRunner in the driver, one process;
``--no-local`` uses the configs' remote EnvRunners. ``<out>/experts_index.json`` lists, per YAML,
the run folder, its exported expert, the wall time and the export figures, rewritten after each expert.

``--nice N`` lowers the driver's priority once Ray is up: Ray waits only 30 s for its raylet to
register, which a raylet started at nice 10 on a loaded machine can miss (seen here at load 20 on 2
cores), while the sampling and learning, in the driver, run at nice N. Ray's start is retried.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--out", default="runs/experts")
    parser.add_argument("--local", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--nice", type=int, default=0, help="niceness added to the driver once Ray is up")
    parser.add_argument("--ray-attempts", type=int, default=4)
    args = parser.parse_args()

    from rlexec.training.runner import init_ray, train
    from rlexec.training.spec import TrainSpec

    for attempt in range(1, args.ray_attempts + 1):
        try:
            init_ray(local=args.local)
            break
        except Exception as exc:  # Ray raises a bare Exception when its node does not come up in time
            import ray

            ray.shutdown()
            print(f"Ray did not start (attempt {attempt}): {exc}", flush=True)
            if attempt == args.ray_attempts:
                raise
            time.sleep(10)
    if args.nice:
        os.nice(args.nice)
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
