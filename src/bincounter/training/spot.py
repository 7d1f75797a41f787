"""Stop requests (spot interruption, StopTrainingJob): SIGTERM becomes a flag
the training loop checks between steps, so the last checkpoint is written from
a consistent state (after an optimizer step), never from inside a signal handler.
"""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


class Interrupted(RuntimeError):
    """The run was asked to stop; a checkpoint was saved to resume from."""


class StopFlag:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name = ""

    def install(self) -> "StopFlag":
        """Handle SIGTERM in this (main) thread; forked DataLoader workers inherit it harmlessly."""
        signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, _frame) -> None:
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()
