"""Work done every few seconds in a daemon thread while the server runs (MLflow sync, the
deployments' control loop)."""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


class Periodic:
    """`work()` every `interval` seconds in a daemon thread, from `start()` until `stop()`. The thread
    outlives any failure: an exception is logged and the next round runs at the next interval."""

    def __init__(self, name: str, interval: float, work: Callable[[], object]):
        if interval <= 0:
            raise ValueError(f"the interval of {name} is a positive number of seconds, not {interval!r}")
        self.name, self.interval, self._work = name, interval, work
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._work()
            except Exception:
                log.exception("%s failed; trying again in %g s", self.name, self.interval)
            self._stopping.wait(self.interval)

    def start(self) -> "Periodic":
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the thread to end and wait for the round in progress, if any."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> "Periodic":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
