"""``rlexec logicq`` on a ``task: trading`` file: it reaches the trading experiment; bad use is a one-line error."""

from __future__ import annotations

from pathlib import Path

from rlexec.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def test_trading_file_goes_to_the_trading_experiment(tmp_path, monkeypatch, capsys):
    from rlexec.logicq import trading

    seen = {}

    def fake_run(spec, *, out, local, restart):
        seen.update(name=spec.name, holes_order=spec.sketch().order, out=out, local=local)
        folder = tmp_path / "logicq" / spec.name
        folder.mkdir(parents=True)
        (folder / "results.md").write_text("| Logic-Q | table |\n")
        return folder

    monkeypatch.setattr(trading, "run", fake_run)
    assert main(["logicq", str(REPO / "tune_configs" / "logicq_trading.yaml"), "--out", str(tmp_path), "--local"]) == 0
    assert seen["name"] == "logicq_trading" and seen["local"] is True and len(seen["holes_order"]) == 4
    assert "| Logic-Q | table |" in capsys.readouterr().out


def test_execution_only_flags_are_refused(tmp_path, capsys):
    path = tmp_path / "t.yaml"
    path.write_text("task: trading\nsub_policies: {a: runs/x}\n")
    assert main(["logicq", str(path), "--seed", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "takes none of ['--seed']" in err[0] and str(path) in err[0], err
