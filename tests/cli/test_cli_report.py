"""``rlexec report RUN_DIR``: one self-contained HTML page per run folder, parsed back and checked."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from rlexec.cli.main import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM = Path("/usr/bin/chromium")


class Page(HTMLParser):
    """What a reader sees: tables (caption, rows of cell text), images, preformatted blocks, all text."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: list[dict] = []
        self.images: list[str] = []
        self.pre: list[str] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._where: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"caption": "", "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("caption", "pre"):
            self._where = tag
            if tag == "pre":
                self.pre.append("")
        elif tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1]["rows"][-1].append("".join(self._cell))
            self._cell = None
        elif tag in ("caption", "pre"):
            self._where = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._where == "caption":
            self.tables[-1]["caption"] += data
        elif self._where == "pre":
            self.pre[-1] += data

    def table(self, caption_start: str) -> dict:
        (found,) = [t for t in self.tables if t["caption"].startswith(caption_start)]
        return found

    def all_text(self) -> str:
        return "".join(self.text)


def _report(run_dir: Path) -> tuple[Path, str]:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(["report", str(run_dir)]) == 0
    path = run_dir / "report.html"
    assert stdout.getvalue().strip() == str(path)
    assert not list(run_dir.glob("*.partial"))  # written atomically: no temp file left behind
    return path, path.read_text(encoding="utf-8")


def _pngs(page: Page) -> list[bytes]:
    prefix = "data:image/png;base64,"
    assert all(src.startswith(prefix) for src in page.images), "every image is embedded, none is a link"
    return [base64.b64decode(src[len(prefix):], validate=True) for src in page.images]


@pytest.fixture(scope="module")
def evaluate_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["evaluate", "--num-orders", "20", "--out", str(out)]) == 0
    (folder,) = (out / "evaluate").iterdir()
    return folder


def test_evaluate_report_has_the_tables_config_commit_and_plots(evaluate_folder):
    _, text = _report(evaluate_folder)
    page = Page(text)
    summary = json.loads((evaluate_folder / "summary.json").read_text())
    run = json.loads((evaluate_folder / "run.json").read_text())

    results = page.table("20 orders · shipped sample")
    header, *rows = results["rows"]
    assert header[:2] == ["strategy", "PA (bp)"] and "reward (bp × 0.01)" in header
    assert [r[0] for r in rows] == ["TWAP", "VWAP", "IS", "POV"]
    for row in rows:
        pa = summary["results"][row[0].lower()]["price_advantage_bps"]
        assert row[1] == f"{pa['mean']:.2f} ± {pa['se']:.2f}"
    comparison = page.table("Paired PA difference vs TWAP")
    assert [r[0] for r in comparison["rows"][1:]] == ["VWAP", "IS", "POV"]
    assert "GLR = mean PA gain / mean PA loss" in page.all_text()

    config = next(p for p in page.pre if '"execution"' in p)
    assert json.loads(config) == run["config"]
    assert run["git_commit"] in page.all_text()
    provenance = dict(tuple(r) for r in page.table("run.json")["rows"][1:])
    assert provenance["git commit"] == run["git_commit"] and provenance["seed"] == "0"

    images = _pngs(page)
    assert len(images) == 2 and all(png[:8] == PNG_SIGNATURE for png in images)
    assert images[0] == (evaluate_folder / "fill_curves.png").read_bytes()


def _train_like(folder: Path) -> Path:
    """A train run folder as ``rlexec train`` leaves it, written by hand (no Ray)."""
    folder.mkdir(parents=True)
    config = {"algorithm": "ppo", "name": "smoke", "seed": 3, "stop": {"training_iterations": 3},
              "environment": {"env": "bar", "env_config": {"split": {"preset": "sample"}}}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / "run.json").write_text(json.dumps({"config": config, "seed": 3, "git_commit": "feedc0de" * 5,
                                                 "command": ["rlexec", "train", "configs/smoke.yaml"]}))
    lines = [json.dumps({"iteration": i, "episode_return_mean": -0.5 + 0.1 * i, "env_steps_sampled_lifetime": 256 * i})
             for i in (1, 2)]
    lines.append(json.dumps({"event": "resumed", "checkpoint": "iter_000002", "iteration": 2}))
    lines.append(json.dumps({"iteration": 3, "episode_return_mean": -0.2, "env_steps_sampled_lifetime": 768}))
    lines.append('{"iteration": 4, "episode_ret')  # the line a kill cut short
    (folder / "progress.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "checkpoints" / "iter_000003").mkdir(parents=True)
    (folder / "checkpoints" / "latest.json").write_text(json.dumps({"path": "iter_000003"}))
    (folder / "summary.json").write_text(json.dumps({"iterations": 3, "checkpoint": "iter_000003",
                                                     "last": {"iteration": 3, "episode_return_mean": -0.2}}))
    return folder


def test_train_report_plots_and_tabulates_the_return_per_iteration(tmp_path):
    folder = _train_like(tmp_path / "train" / "smoke" / "20260101T000000-0a1b2c3d")
    _, text = _report(folder)
    page = Page(text)
    header, *rows = page.table("progress.jsonl")["rows"]
    assert header == ["iteration", "episode_return_mean", "env_steps_sampled_lifetime"]
    assert rows == [["1", "-0.4", "256"], ["2", "-0.3", "512"], ["3", "-0.2", "768"]]
    assert "ppo 'smoke' on the bar env, seed 3" in page.all_text()
    assert "bp × 0.01" in page.all_text()  # the unit of the bar env's return
    assert any("algorithm: ppo" in block for block in page.pre)  # config.yaml as written
    assert "feedc0de" * 5 in page.all_text()
    (curve,) = _pngs(page)
    assert curve[:8] == PNG_SIGNATURE and len(curve) > 10_000
    assert "iter_000003" in page.all_text()


def test_a_folder_of_an_unknown_kind_renders_its_records_images_and_files(tmp_path, evaluate_folder):
    folder = tmp_path / "regimes" / "20260101T000000-deadbeef"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"config": {"regimes": ["baseline", "open"]}, "seed": 1,
                                                 "git_commit": "c0ffee"}))
    (folder / "scores.json").write_text(json.dumps({"baseline": 1.5}))
    shutil.copy(evaluate_folder / "pa_distribution.png", folder / "pa_distribution.png")
    _, text = _report(folder)
    page = Page(text)
    assert "rlexec regimes run" in page.all_text()
    assert any('"baseline": 1.5' in block for block in page.pre)
    assert any('"regimes"' in block for block in page.pre)
    assert "c0ffee" in page.all_text()
    assert [png[:8] for png in _pngs(page)] == [PNG_SIGNATURE]
    files = [r[0] for r in page.table(str(folder.resolve()))["rows"][1:]]
    assert files == ["pa_distribution.png", "run.json", "scores.json"]


def test_a_folder_that_is_no_run_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0] and "not a run folder" in err[0]
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")
def test_a_browser_renders_the_report(evaluate_folder, tmp_path):
    path, _ = _report(evaluate_folder)
    shot = tmp_path / "shot.png"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,2400", path.as_uri()], check=True, capture_output=True, timeout=120)
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[0] >= 2000
    # a rendered page: text and the embedded plots, not a blank or broken-image screen
    assert (pixels < 0.5).mean() > 0.01 and pixels.std() > 0.1
