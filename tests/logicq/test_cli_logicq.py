"""``rlexec logicq``: the names its parser offers are the study's; bad study files are one-line errors."""

from __future__ import annotations

import pytest

from rlexec.cli.main import main


def test_the_variants_the_parser_offers_are_the_studys():
    from rlexec.cli import LOGICQ_VARIANTS
    from rlexec.logicq.study import VARIANTS

    assert LOGICQ_VARIANTS == VARIANTS


@pytest.mark.parametrize("text, message", [
    ("name: x\n", "policies must be a list"),
    ("policies: [a]\nact: greedy\n", "act must be one of"),
    ("policies: [a]\nvariants: [ensemble]\n", "ensemble variant needs at least two"),
    ("policies: [a, b]\nsearch: {trials: 3}\n", "search: unknown key"),
    ("policies: [a, b]\nvalidation: {num_orders: 0}\n", "validation.num_orders must be an integer >= 1"),
    ("policies: [a, b]\nsketch: {order: [up]}\n", "unknown trend"),
])
def test_a_bad_study_file_is_a_one_line_error(tmp_path, capsys, text, message):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    assert main(["logicq", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(path) in err[0], err


def test_tuning_summaries_of_separate_runs_are_merged_not_overwritten(tmp_path, monkeypatch):
    """Drivers tuning different seeds of one study write one tuning.json holding every run."""
    import json

    from rlexec.logicq import study as study_module

    def fake_tune(study, *, seeds=None, **kwargs):
        return [{"variant": "logicq", "seed": s, "best_validation_pa_bps": float(s)} for s in seeds]

    monkeypatch.setattr(study_module, "tune_study", fake_tune)
    path = tmp_path / "study.yaml"
    path.write_text("name: merged\npolicies: [a, b]\n")
    out = tmp_path / "runs"
    assert main(["logicq", str(path), "--seed", "0", "--out", str(out)]) == 0
    assert main(["logicq", str(path), "--seed", "3", "--out", str(out)]) == 0
    assert main(["logicq", str(path), "--seed", "0", "--out", str(out)]) == 0  # a rerun replaces its entry
    runs = json.loads((out / "logicq" / "merged" / "tuning.json").read_text())["runs"]
    assert sorted(r["seed"] for r in runs) == [0, 3]
