"""Ray's own messages into the run's ``ray.log`` instead of the terminal (``rlexec train``/``tune`` without ``--verbose``).

Every run used to print Ray's token-authentication notice, RLlib's "new API stack" and RLModule
deprecation warnings and Tune's "Install gputil" between the progress lines. They come three ways,
and :class:`RayLogRouter` catches each:

* Python ``logging`` in the driver. ``import ray`` gives the ``ray`` logger a stderr handler and
  stops propagation; ``import ray.rllib`` gives ``ray.rllib`` one of its own. ``ray.init``'s
  ``configure_logging`` only sets the level and format of the handlers already there, so the
  stderr handlers of ``ray`` and ``ray.*`` loggers are swapped for one that writes the file (their
  file handlers stay).
* ``warnings.warn`` from Ray's code (DeprecationWarnings and the like): those whose source file is
  in the ``ray`` package go to the same file.
* The EnvRunner, Learner and trial processes' stdout/stderr. With ``log_to_driver`` (Ray's default;
  ``--local`` runs without it, sampling in the driver) Ray's log monitor sends their lines to the
  driver, which prints them; here they are written to the file instead, prefixed
  ``(<actor> pid=.. ip=..) [stderr]``. This uses Ray 2.60's
  ``ray._private.ray_logging.global_worker_stdstream_dispatcher``; without it the lines stay on
  the terminal. The autoscaler's periodic status, which Ray does not print, is left out.

Messages before the run folder exists (``ray.init``, building the config) are held and written
when :meth:`RayLogRouter.attach` names the folder, or to ``<out>/ray.log`` if the run stops before.
What Ray's C++ core writes straight to the process's stderr is not caught.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path

LOG_NAME = "ray.log"
LOG_FORMAT = "%(asctime)s\t%(levelname)s %(name)s %(filename)s:%(lineno)s -- %(message)s"
_DISPATCH_NAME = "rlexec_ray_log"
_RAY_PRINT_HANDLER = "ray_print_logs"  # the name Ray 2.60 gives its own printing handler


class _FileSink(logging.Handler):
    """A log file that holds its lines in memory until it knows its path."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self.path: Path | None = None
        self._held: list[str] = []
        self._file = None
        self._write_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        # The sink replaces the handlers of several loggers (ray, ray.rllib): a record propagating
        # through two of them is written once.
        if getattr(record, "_rlexec_ray_log", False):
            return
        record._rlexec_ray_log = True
        try:
            self.write_line(self.format(record))
        except Exception:
            self.handleError(record)

    def write_line(self, text: str) -> None:
        with self._write_lock:
            if self._file is None:
                self._held.append(text)
            else:
                self._file.write(text + "\n")
                self._file.flush()  # a run that dies leaves its log complete

    def open(self, path: Path) -> None:
        with self._write_lock:
            if self._file is not None:
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            self.path = path
            self._file = open(path, "a", encoding="utf-8")
            for text in self._held:
                self._file.write(text + "\n")
            self._file.flush()
            self._held.clear()

    @property
    def holds_lines(self) -> bool:
        return bool(self._held)

    def close(self) -> None:
        with self._write_lock:
            if self._file is not None:
                self._file.close()
                self._file = None
        super().close()


class RayLogRouter:
    """While active (``with RayLogRouter(out):``), Ray's messages go to ``<folder>/ray.log``.

    ``fallback``: the folder whose ``ray.log`` takes what was held if :meth:`attach` is never
    called (the run stopped before its folder existed). ``verbose=True`` changes nothing: Ray
    prints as it always does.
    """

    def __init__(self, fallback: str | os.PathLike, *, verbose: bool = False):
        self.fallback = Path(fallback)
        self.verbose = verbose
        self._sink: _FileSink | None = None
        self._swapped: list[tuple[logging.Logger, list[logging.Handler]]] = []  # each logger and its handlers before
        self._showwarning = None
        self._dispatcher = None
        self._ray_dir = ""

    @property
    def path(self) -> Path | None:
        """The log file, once it is known."""
        return self._sink.path if self._sink is not None else None

    def __enter__(self) -> RayLogRouter:
        if self.verbose:
            return self
        import ray
        import ray.rllib  # installs the ray.rllib handler now, so that it is swapped too

        self._ray_dir = os.path.dirname(os.path.abspath(ray.__file__)) + os.sep
        self._sink = _FileSink()
        self._capture_loggers()
        self._showwarning = warnings.showwarning
        warnings.showwarning = self._route_warning
        return self

    def attach(self, folder: str | os.PathLike) -> None:
        """Write to ``<folder>/ray.log`` from now on (held lines first); Ray must be initialised by now."""
        if self._sink is None:
            return
        self._sink.open(Path(folder) / LOG_NAME)
        self._capture_loggers()  # loggers that gained a handler since (a module imported later)
        self.capture_worker_output()

    def __exit__(self, *exc_info) -> None:
        if self._sink is None:
            return
        if self._dispatcher is not None:
            self._dispatcher.remove_handler(_DISPATCH_NAME)
            self._dispatcher.add_handler(_RAY_PRINT_HANDLER, self._ray_printer)
            self._dispatcher = None
        for logger, handlers in self._swapped:
            logger.handlers[:] = handlers  # the same handlers in the same order as before
        self._swapped.clear()
        if warnings.showwarning == self._route_warning:
            warnings.showwarning = self._showwarning
        if self._sink.path is None and self._sink.holds_lines:
            self._sink.open(self.fallback / LOG_NAME)
        self._sink.close()

    # -------------------------------------------------------------------------------- the routes

    def _capture_loggers(self) -> None:
        for name in ["ray", *sorted(n for n in logging.root.manager.loggerDict if n.startswith("ray."))]:
            logger = logging.getLogger(name)
            before = list(logger.handlers)
            for handler in before:
                if _is_terminal_handler(handler):
                    if not any(swapped is logger for swapped, _ in self._swapped):
                        self._swapped.append((logger, before))
                    logger.removeHandler(handler)
                    if self._sink not in logger.handlers:
                        logger.addHandler(self._sink)

    def _route_warning(self, message, category, filename, lineno, file=None, line=None):
        if str(filename).startswith(self._ray_dir):
            self._sink.write_line(f"{category.__name__} {filename}:{lineno} -- {message}")
        else:
            self._showwarning(message, category, filename, lineno, file, line)

    def capture_worker_output(self) -> None:
        """Route the worker processes' output (call once Ray is initialised; :meth:`attach` does)."""
        if self._sink is None:
            return
        try:
            from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
        except ImportError:
            return
        printers = [handler for name, handler in dispatcher.handlers if name == _RAY_PRINT_HANDLER]
        if self._dispatcher is not None or not printers:
            return  # already routed, or Ray prints no worker output here (log_to_driver=False)
        self._ray_printer = printers[0]
        dispatcher.remove_handler(_RAY_PRINT_HANDLER)
        dispatcher.add_handler(_DISPATCH_NAME, self._write_worker_lines)
        self._dispatcher = dispatcher

    def _write_worker_lines(self, batch: dict) -> None:
        who = " ".join(str(part) for part in (batch.get("actor_name") or batch.get("task_name"),
                                              f"pid={batch.get('pid')}", f"ip={batch.get('ip')}") if part)
        if batch.get("pid") == "autoscaler":
            # Its status report every few seconds, which Ray does not print either (it keeps it in its
            # session folder, logs/monitor.*).
            return
        stream = "stderr" if batch.get("is_err") else "stdout"
        for text in batch.get("lines", []):
            self._sink.write_line(f"({who}) [{stream}] {text}")


def _is_terminal_handler(handler: logging.Handler) -> bool:
    """A handler that prints (Ray's are stream handlers on stderr), not one that writes a file."""
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
