"""MoE-DPO training through `ray job submit` (issue 10, "Done when": training locally and through Ray jobs).

On the loopback, token-auth Ray head of test_job_submission.py (its own ports, temp dir and token, stopped
by the id of the process it started; no ``ray stop``), a job runs ``python -m rlexec.cli.main train`` on a
tiny synthetic preference set built here, as ``cluster/submit`` would (the tracked files uploaded as the
working directory). The job must succeed, attach to that head, and leave a run folder with a checkpoint
(its weights-only module loadable without Ray) and the training figures of the after_training hook.
Slow (a Ray head and a job driver start: over a minute on the shared 2-core machine): ``-m slow``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from loopback_cluster import wait_for_job_success
from test_job_submission import _client, ray_head, user_home  # noqa: F401  (module fixtures: the head)

from rlexec.algorithms.moe_dpo.preferences import synthetic_preferences, write_preferences

REPO = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_S = 420
ITERATIONS = 2

pytestmark = pytest.mark.slow


def test_moe_dpo_trains_as_a_ray_job(ray_head, tmp_path):  # noqa: F811  (the imported fixture)
    preferences = write_preferences(synthetic_preferences(num_contexts=12, seed=0)[0], tmp_path / "preferences")
    config = tmp_path / "moe_dpo_job.yaml"
    config.write_text(yaml.safe_dump({
        "algorithm": "moe_dpo", "name": "moe_dpo_job", "seed": 0, "stop": {"training_iterations": ITERATIONS},
        "checkpoint_frequency": 1,
        # no experts given: fresh MLPs over the synthetic set's 4 actions (the test's budget, not a result)
        "training": {"preferences": str(preferences), "num_actions": 4, "expert_hidden": [8], "gate_hidden": [8],
                     "minibatch_size": 16},
    }))
    out = tmp_path / "out"
    upload = tmp_path / "upload"  # what cluster/submit uploads: the files git tracks
    subprocess.run([sys.executable, str(REPO / "cluster" / "stage.py"), str(REPO), str(upload)], check=True,
                   capture_output=True, timeout=60)
    client = _client(ray_head)
    job_id = client.submit_job(entrypoint=f"python -m rlexec.cli.main train {config} --out {out}",
                               runtime_env={"working_dir": str(upload)})
    wait_for_job_success(client, job_id, JOB_TIMEOUT_S)

    runs = sorted((out / "train" / "moe_dpo_job").iterdir())
    assert len(runs) == 1, runs
    run = runs[0]
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert latest["iteration"] == ITERATIONS
    assert (run / "checkpoints" / latest["path"] / "rllib_checkpoint.json").is_file()
    assert ray_head["gcs"] in json.loads((run / "run.json").read_text())["ray"]  # attached to this head
    lines = (run / "progress.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == list(range(1, ITERATIONS + 1))

    from rlexec.algorithms.moe_dpo.module import MoEDPOModule
    from rlexec.policies.checkpoints import load_module

    assert isinstance(load_module(run), MoEDPOModule)  # the weights-only copy, read here without Ray
    figures = json.loads((run / "summary.json").read_text())["after_training"]["figures"]
    assert sorted(figures) == ["gate_by_regime", "logp_dynamics"]
    assert all(Path(path).is_file() and Path(path).parent == run for path in figures.values())
