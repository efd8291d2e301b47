"""Fault figures: what survives SIGKILL, and many runs writing into one ``runs/`` folder at once.

* ``train``: ``rlexec train --local`` (a tiny PPO on the shipped sample, a checkpoint every 2
  iterations) is killed with SIGKILL (its whole process group: the driver and its private Ray)
  ``--train-kills`` times, then resumed with ``rlexec train --resume`` each time and finally run to
  the end. Kill points, drawn with ``--seed``: a random moment after the start (Ray starting,
  restoring, or training), mid-iteration after a random number of new iterations, or inside the
  k-th checkpoint save (as soon as an ``iter_N.partial`` folder appears). Reported: ``kills``,
  ``kills_in_checkpoint_save`` (a save of the killed process under way at the kill), ``survived``
  (kills after which the next resume continued from the newest complete checkpoint, one that
  loads), ``lost_iterations`` (per kill: iterations the killed process had finished that were not
  in that checkpoint, so were trained again) and ``equals_unbroken_run`` (the final weights, and
  every iteration's figures each time it was trained, equal those of an uninterrupted run with the
  same config: the sampling streams are per iteration, so this holds exactly).
* ``sweep``: the driver of ``rlexec tune --local`` (3 trials of 3 iterations, one at a time) is
  killed ``--sweep-kills`` times, each a random moment after a new trial result, and the same
  command run again until the sweep ends. Reported: ``kills``, ``trials``, ``finished_trials_rerun``
  (trials finished before a kill that reported again after it), ``trials_lost`` (trials missing or
  short of their iterations at the end), ``iterations_reported_twice`` (an unfinished trial going on
  from a checkpoint older than its last report repeats those iterations).
* ``concurrent``: ``--concurrent`` ``rlexec evaluate`` and as many ``rlexec simulate`` (a 30-minute
  session) started at once into one ``runs/``. Reported: ``processes``, ``failed``, ``folders``
  (distinct run folders), ``collisions_resolved`` (folders that got a ``-N`` suffix because another
  process had taken the name), ``partial_files`` and ``unreadable_files`` (each file is parsed:
  JSON, CSV, parquet, a PNG from its signature to its ``IEND`` chunk).

    python benchmarks/fault_figures.py [--train-kills 10] [--sweep-kills 3] [--concurrent 4] [--seed 0]

Prints one JSON line. Work files go to a temporary folder (``--work`` to keep them).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TIMINGS = {"time_this_iter_s", "sample_time_s", "learn_time_s", "env_steps_per_s"}
TINY_PPO = {
    "algorithm": "ppo", "name": "fault", "seed": 11,
    "environment": {"env": "bar", "env_config": {"split": {"preset": "sample"}, "part": "train"}},
    "env_runners": {"num_env_runners": 0, "num_envs_per_env_runner": 2},
    "training": {"lr": 1.0e-3, "train_batch_size_per_learner": 64, "minibatch_size": 32, "num_epochs": 2},
    "rl_module": {"module": "default", "model_config": {"fcnet_hiddens": [16]}},
}


def start(args: list[str], log: Path) -> subprocess.Popen:
    """``rlexec ARGS`` in a session of its own, so that a kill takes its private Ray along."""
    env = {**os.environ, "RAY_DEDUP_LOGS": "0", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    with open(log, "a") as f:
        return subprocess.Popen([sys.executable, "-m", "rlexec.cli.main", *map(str, args)], stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=log.parent)


def kill(process: subprocess.Popen) -> None:
    for _ in range(2):  # again after a pause: whatever the dying Ray started meanwhile
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=60)
        time.sleep(0.5)


def jsonl(path: Path) -> tuple[list[dict], int]:
    """(the parsed lines, how many did not parse)."""
    if not path.exists():
        return [], 0
    lines, bad = [], 0
    for text in path.read_text().splitlines():
        if text.strip():
            try:
                lines.append(json.loads(text))
            except ValueError:
                bad += 1
    return lines, bad


# ------------------------------------------------------------------------------------ train kills


def saves(run: Path | None) -> set[tuple[str, int, int]]:
    """The checkpoint saves under way in a run: its ``.partial`` folders (name, inode, creation time)."""
    folder = run / "checkpoints" if run else None
    if folder is None or not folder.is_dir():
        return set()
    found = set()
    for entry in os.scandir(folder):
        if entry.name.endswith(".partial"):
            try:
                stat = entry.stat()
            except FileNotFoundError:  # renamed meanwhile
                continue
            found.add((entry.name, stat.st_ino, stat.st_ctime_ns))
    return found


def train_kills(work: Path, kills_wanted: int, rng: random.Random) -> dict:
    from rlexec.policies.checkpoints import (
        CheckpointError,
        latest_checkpoint,
        load_module,
    )

    iterations = 4 * kills_wanted + 6  # enough that the run outlasts the kills
    config = work / "fault.yaml"
    config.write_text(yaml.safe_dump({**TINY_PPO, "stop": {"training_iterations": iterations},
                                      "checkpoint_frequency": 2, "keep_checkpoints": 2}))
    reference = start(["train", config, "--local", "--out", work / "unbroken"], work / "unbroken.log")
    if reference.wait() != 0:
        raise RuntimeError((work / "unbroken.log").read_text()[-2000:])
    (unbroken_run,) = (work / "unbroken" / "train" / "fault").iterdir()

    out = work / "killed"
    runs = out / "train" / "fault"
    records, failures = [], []
    while len(records) < kills_wanted:
        run = max(runs.iterdir(), default=None) if runs.is_dir() else None
        process = start(["train", config, "--local", "--out", out, *(["--resume"] if run else [])], work / "killed.log")
        mode = rng.choice(["moment", "training", "save"]) if run else "training"
        steps, delay = rng.randint(1, 3), rng.uniform(0.0, 8.0 if mode == "moment" else 0.6)
        lines_before = len(jsonl(run / "progress.jsonl")[0]) if run else 0
        stale = saves(run)  # left by a save killed earlier: not this process's
        started, seen = time.monotonic(), set()
        while process.poll() is None:
            if run is None and runs.is_dir():
                run = max(runs.iterdir(), default=None)
            new_lines = len(jsonl(run / "progress.jsonl")[0]) - lines_before if run else 0
            seen |= saves(run) - stale
            if mode == "moment" and time.monotonic() - started >= delay:
                break
            if mode == "training" and new_lines >= steps and (run / "checkpoints" / "latest.json").exists():
                time.sleep(delay)
                break
            if mode == "save" and len(seen) >= steps and saves(run) - stale:
                break
            time.sleep(0.003)
        if process.poll() is not None:  # it ended before the kill point
            if process.returncode != 0:
                failures.append(f"exit {process.returncode}")
            break
        in_save = bool(saves(run) - stale)
        kill(process)
        run = max(runs.iterdir())
        progress = jsonl(run / "progress.jsonl")[0]
        try:
            checkpoint = latest_checkpoint(run)
            json.loads((checkpoint / "rllib_checkpoint.json").read_text())
            load_module(checkpoint)  # complete: the module loads
            saved = int(re.fullmatch(r"iter_(\d+)(\.replaced)?", checkpoint.name)[1])
        except (CheckpointError, OSError, ValueError, TypeError) as exc:
            saved = None
            failures.append(f"after kill {len(records) + 1}: {exc}")
        records.append({"mode": mode, "in_save": in_save, "saved": saved,
                        "trained": [line["iteration"] for line in progress[lines_before:] if "event" not in line],
                        "resumed_events": sum(line.get("event") == "resumed" for line in progress)})

    final = start(["train", config, "--local", "--out", out, "--resume"], work / "killed.log")
    if final.wait() != 0:
        failures.append("the last resume failed: " + (work / "killed.log").read_text()[-500:])
    run = max(runs.iterdir())
    progress, corrupt_lines = jsonl(run / "progress.jsonl")
    events = [line for line in progress if line.get("event") == "resumed"]
    survived, lost = 0, []
    for record in records:
        # the first resume after the kill (a resume killed before it restored writes no event)
        event = events[record["resumed_events"]] if record["resumed_events"] < len(events) else None
        if event is not None and record["saved"] is not None and event["iteration"] == record["saved"]:
            survived += 1
        lost.append(sum(iteration > record["saved"] for iteration in record["trained"])
                    if record["saved"] is not None else None)

    def figures(line: dict) -> dict:
        return {k: v for k, v in line.items() if k not in TIMINGS}

    expected = {line["iteration"]: figures(line) for line in jsonl(unbroken_run / "progress.jsonl")[0]}
    trained = [figures(line) for line in progress if "event" not in line]
    same_figures = bool(trained) and all(line == expected.get(line["iteration"]) for line in trained) \
        and {line["iteration"] for line in trained} == set(expected)
    try:
        ours, theirs = load_module(run).state_dict(), load_module(unbroken_run).state_dict()
        import torch

        same_weights = ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    except CheckpointError as exc:
        failures.append(str(exc))
        same_weights = False
    return {"iterations": iterations, "kills": len(records),
            "kills_in_checkpoint_save": sum(r["in_save"] for r in records),
            "kill_points": [r["mode"] for r in records], "survived": survived,
            "lost_iterations": lost, "lost_iterations_total": sum(x for x in lost if x is not None),
            "iterations_trained": len(trained), "corrupt_progress_lines": corrupt_lines,
            "equals_unbroken_run": bool(same_weights and same_figures), "same_weights": same_weights,
            "same_figures": same_figures, "failures": failures}


# ------------------------------------------------------------------------------------ sweep kills


def trial_results(experiment: Path) -> dict[str, list[dict]]:
    if not experiment.is_dir():
        return {}
    return {t.name: jsonl(t / "result.json")[0] for t in sorted(experiment.iterdir())
            if t.is_dir() and t.name.startswith("trial_trainable")}


def sweep_kills(work: Path, kills_wanted: int, rng: random.Random) -> dict:
    trials, iterations = 3, 3
    base = work / "base.yaml"
    base.write_text(yaml.safe_dump({**TINY_PPO, "checkpoint_frequency": 1}))
    sweep = work / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "fault", "base": str(base), "param_space": {"training.lr": {"choice": [1.0e-4, 1.0e-3, 1.0e-2]}},
        "metric": "episode_return_mean", "num_samples": trials, "max_concurrent": 1,
        "search": {"algorithm": "random", "seed": 0}, "scheduler": {"type": "fifo"},
        "stop": {"training_iterations": iterations}, "checkpoint_frequency": 1}))
    experiment = work / "runs" / "tune" / "fault"
    finished_before_kill: dict[str, list[dict]] = {}
    kills, failures = 0, []
    while kills < kills_wanted:
        process = start(["tune", sweep, "--local", "--out", work / "runs"], work / "tune.log")
        reported = sum(map(len, trial_results(experiment).values()))
        while process.poll() is None and sum(map(len, trial_results(experiment).values())) <= reported:
            time.sleep(0.05)
        if process.poll() is not None:
            if process.returncode != 0:
                failures.append(f"exit {process.returncode}")
            break
        time.sleep(rng.uniform(0.0, 3.0))
        if process.poll() is not None:
            break
        kill(process)
        kills += 1
        for name, lines in trial_results(experiment).items():
            if len(lines) >= iterations and name not in finished_before_kill:
                finished_before_kill[name] = lines
    final = start(["tune", sweep, "--local", "--out", work / "runs"], work / "tune.log")
    if final.wait() != 0:
        failures.append("the last run failed: " + (work / "tune.log").read_text()[-500:])
    results = trial_results(experiment)
    reported = {name: [line["training_iteration"] for line in lines] for name, lines in results.items()}
    with open(experiment / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    return {"kills": kills, "trials": len(results), "trials_in_trials_csv": len(rows),
            "finished_before_a_kill": len(finished_before_kill),
            "finished_trials_rerun": sum(results.get(name) != lines for name, lines in finished_before_kill.items()),
            "trials_lost": trials - sum(set(its) >= set(range(1, iterations + 1)) for its in reported.values()),
            "iterations_reported_twice": sum(len(its) - len(set(its)) for its in reported.values()),
            "failures": failures}


# --------------------------------------------------------------------------- concurrent outputs


def readable(path: Path) -> bool:
    try:
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            with open(path) as f:
                return len(list(csv.reader(f))) >= 1
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.read_table(path)
        elif path.suffix == ".png":
            data = path.read_bytes()
            return data[:8] == b"\x89PNG\r\n\x1a\n" and data[-8:-4] == b"IEND"
        return True
    except Exception:  # noqa: BLE001 - any failure to parse is what is counted
        return False


def concurrent_outputs(work: Path, each: int) -> dict:
    config = yaml.safe_load(subprocess.run(
        [sys.executable, "-m", "rlexec.cli.main", "simulate", "--print-config"], capture_output=True, text=True,
        check=True, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout)
    config["session"]["end_ns"] = config["session"]["start_ns"] + 30 * 60 * 10**9
    (work / "short_day.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    out = work / "runs"
    commands = [["evaluate", "--split", "sample", "--num-orders", "20", "--strategies", "twap,vwap", "--out", out]
                ] * each + [["simulate", "--config", work / "short_day.yaml", "--out", out]] * each
    processes = [start(command, work / f"concurrent_{i}.log") for i, command in enumerate(commands)]
    failed = sum(p.wait() != 0 for p in processes)
    folders = [f for kind in ("evaluate", "simulate") if (out / kind).is_dir() for f in (out / kind).iterdir()]
    files = [p for folder in folders for p in folder.rglob("*") if p.is_file()]
    return {"processes": len(processes), "failed": failed, "folders": len(set(folders)),
            "collisions_resolved": sum(bool(re.search(r"-[0-9a-f]{8}-\d+$", f.name)) for f in folders),
            "files": len(files), "partial_files": sum(p.name.endswith(".partial") for p in files),
            "unreadable_files": sum(not readable(p) for p in files)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-kills", type=int, default=10)
    parser.add_argument("--sweep-kills", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=4, help="evaluate and simulate processes, each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", help="keep the work files here (default: a temporary folder, removed)")
    parser.add_argument("--only", choices=("train", "sweep", "concurrent"), action="append")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rlexec-faults-"))
    rng = random.Random(args.seed)
    parts = args.only or ["train", "sweep", "concurrent"]
    report: dict = {"seed": args.seed}
    try:
        for part, run in (("train", lambda w: train_kills(w, args.train_kills, rng)),
                          ("sweep", lambda w: sweep_kills(w, args.sweep_kills, rng)),
                          ("concurrent", lambda w: concurrent_outputs(w, args.concurrent))):
            if part in parts:
                (work / part).mkdir(parents=True, exist_ok=True)
                started = time.monotonic()
                report[part] = run(work / part)
                report[part]["wall_s"] = round(time.monotonic() - started, 1)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
