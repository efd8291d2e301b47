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
