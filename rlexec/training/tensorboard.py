"""TensorBoard event files, so that ``tensorboard --logdir runs/`` shows every run's curves.

* ``rlexec train`` writes ``<run>/tb/``: every figure of each progress.jsonl line, at step
  ``iteration``, tagged ``time/<key>`` for the timings (``time_*_s``) and ``train/<key>`` for the
  rest (RLlib's figures and the Learner's own metrics, by their progress.jsonl names). A resumed run
  adds a second event file to the same folder; TensorBoard joins them by step.
* ``rlexec tune``: Ray Tune writes the event files itself (its ``TBXLoggerCallback``, on whenever
  tensorboardX is installed, as it is with ``ray[tune]``): ``<out>/tune/<sweep>/<trial>/events.out.tfevents.*``,
  every reported figure tagged ``ray/tune/<key>`` (the score and the timings included).
* Other learners (the preference and EM learners) log through :class:`ScalarWriter` into a
  ``tb/`` folder of their run, e.g. ``ScalarWriter(run_dir / "tb").write(step, metrics, group="learner")``.

TensorBoard stores scalars as 32-bit floats: the curves equal progress.jsonl to about 7 digits.
"""

from __future__ import annotations

import math
import os
import struct
from collections import defaultdict
from pathlib import Path
from typing import Any


class ScalarWriter:
    """Scalars into a TensorBoard event file in ``logdir`` (tensorboardX; no TensorFlow needed).

    The file is created with the first scalar: a run that fails before its first iteration (a
    resume from a damaged checkpoint) leaves its folder as it was.
    """

    def __init__(self, logdir: str | os.PathLike):
        self.logdir = Path(logdir)
        self._writer = None

    def write(self, step: int, scalars: dict[str, Any], *, group: str | None = None) -> None:
        """Every finite number of ``scalars`` at ``step``, tagged ``group/key`` (``key`` without a group);
        flushed at once, so a TensorBoard watching the run sees each step as it ends."""
        if self._writer is None:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(str(self.logdir))
        for key, value in scalars.items():
            if _is_scalar(value):
                self._writer.add_scalar(f"{group}/{key}" if group else key, float(value), global_step=step)
        self._writer.flush()

    def write_progress(self, line: dict[str, Any]) -> None:
        """A progress.jsonl line, at step ``iteration`` (tags: see the module docstring)."""
        step = int(line["iteration"])
        timings = {k: v for k, v in line.items() if k.startswith("time_")}
        self.write(step, {k: v for k, v in line.items() if k != "iteration" and k not in timings}, group="train")
        self.write(step, timings, group="time")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def progress_tag(key: str) -> str:
    """The tag :meth:`ScalarWriter.write_progress` gives a progress.jsonl key."""
    return f"{'time' if key.startswith('time_') else 'train'}/{key}"


def read_scalars(logdir: str | os.PathLike) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` from every event file in ``logdir`` (later files win on a step).

    A plain reader of the TFRecord framing (length, CRC, record, CRC) with tensorboardX's protobuf
    classes, so that checking the files needs no TensorFlow or TensorBoard.
    """
    from tensorboardX.proto.event_pb2 import Event

    scalars: dict[str, dict[int, float]] = defaultdict(dict)
    for path in sorted(Path(logdir).glob("events.out.tfevents.*")):
        for record in _records(path):
            event = Event.FromString(record)
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    scalars[value.tag][event.step] = value.simple_value
    return dict(scalars)


def _records(path: Path):
    from tensorboardX.record_writer import masked_crc32c

    data = path.read_bytes()
    offset = 0
    while offset + 12 <= len(data):
        header = data[offset:offset + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[offset + 8:offset + 12])
        record = data[offset + 12:offset + 12 + length]
        end = offset + 12 + length + 4
        if header_crc != masked_crc32c(header) or end > len(data):
            return  # a record being written (or a damaged tail): stop at the last complete one
        (record_crc,) = struct.unpack("<I", data[end - 4:end])
        if record_crc != masked_crc32c(record):
            return
        yield record
        offset = end


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
