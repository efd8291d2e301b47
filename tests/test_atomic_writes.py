"""Files a run leaves behind are written whole or not at all (temp file, fsync, rename)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import torch

from rlexec.data.orders import Order, read_orders, write_orders
from rlexec.policies.expert import MLPPolicy
from rlexec.provenance import write_atomic, write_json_atomic


def crash_after_writing_half(tmp):
    tmp.write_text('{"half": ')
    raise OSError("disk full")


def test_a_crash_mid_write_leaves_the_previous_file_and_no_partial(tmp_path):
    target = write_json_atomic({"complete": True}, tmp_path / "summary.json")
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, crash_after_writing_half)
    assert json.loads(target.read_text()) == {"complete": True}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_crash_on_a_first_write_leaves_nothing(tmp_path):
    with pytest.raises(OSError):
        write_atomic(tmp_path / "per_order.parquet", crash_after_writing_half)
    assert list(tmp_path.iterdir()) == []


def test_order_files_are_replaced_whole(tmp_path, monkeypatch):
    orders = [Order(symbol="AAPL", date=dt.date(2019, 2, 13), side="buy", quantity=2000, start_minute=30)]
    path = write_orders(orders, tmp_path / "orders.csv")
    before = path.read_bytes()

    def failing_csv(table, where):
        open(where, "w").write("symbol,da")
        raise OSError("killed")

    monkeypatch.setattr("rlexec.data.orders.pacsv.write_csv", failing_csv)
    with pytest.raises(OSError):
        write_orders(orders * 3, path)
    assert path.read_bytes() == before and read_orders(path)[0].quantity == 2000


def test_an_expert_folder_is_never_half_written(tmp_path, monkeypatch):
    policy = MLPPolicy(obs_dim=4, num_actions=3, hidden_sizes=(5,))
    folder = policy.save(tmp_path / "expert")
    weights = (folder / "policy.pt").read_bytes()

    def failing_save(state, where):
        open(where, "wb").write(b"PK\x03\x04")
        raise OSError("killed")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError):
        MLPPolicy(obs_dim=4, num_actions=3, hidden_sizes=(5,)).save(folder)
    assert (folder / "policy.pt").read_bytes() == weights
    loaded = MLPPolicy.load(folder)
    x = np.zeros((2, 4), dtype=np.float32)
    np.testing.assert_array_equal(loaded.probs(x).detach().numpy(), policy.probs(x).detach().numpy())
    assert sorted(p.name for p in folder.iterdir()) == ["policy.json", "policy.pt"]
