"""A progress bar on a terminal, plain log lines elsewhere (CI logs, files)."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

log = logging.getLogger(__name__)


class Progress:
    """``with Progress(total, "download") as p: p.update()``"""

    def __init__(self, total: int, desc: str, stream=None, every: float = 0.1) -> None:
        self.total, self.desc, self.done = total, desc, 0
        self.stream = stream or sys.stderr
        self.step = max(1, int(total * every))
        self.bar = tqdm(total=total, desc=desc, file=self.stream, unit="file") if self.stream.isatty() else None

    def update(self, n: int = 1) -> None:
        before, self.done = self.done, self.done + n
        if self.bar is not None:
            self.bar.update(n)
        # a line per step boundary crossed, so a jump of many items is printed too
        elif self.done // self.step > before // self.step or (self.done == self.total and n):
            print(f"{self.desc}: {self.done}/{self.total}", file=self.stream, flush=True)

    def advance_to(self, done: int) -> None:
        """Move to ``done`` of ``total`` (a count reported from outside; never backwards)."""
        if min(done, self.total) > self.done:
            self.update(min(done, self.total) - self.done)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def echo(text: str) -> None:
    """Progress lines of a poll: rewritten in place on a terminal, one line per update in a log."""
    if not sys.stderr.isatty():
        text = text.strip("\r\n") + "\n" if text.strip() else ""
    sys.stderr.write(text)
    sys.stderr.flush()
