"""The label contract: a bin's item count <-> a class index.

Counts ``min_count..max_count`` (default 1..5) become classes ``0..n-1``.
Training, the evaluation report and the server all go through these helpers,
so a count can never be shifted by one on one side only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CountRange:
    min_count: int = 1
    max_count: int = 5

    def __post_init__(self) -> None:
        if self.min_count < 0 or self.max_count < self.min_count:
            raise ValueError(f"bad count range {self.min_count}..{self.max_count}")

    @property
    def counts(self) -> list[int]:
        return list(range(self.min_count, self.max_count + 1))

    @property
    def num_classes(self) -> int:
        return self.max_count - self.min_count + 1

    def contains(self, count: int) -> bool:
        return self.min_count <= count <= self.max_count

    def to_index(self, count: int) -> int:
        if not self.contains(count):
            raise ValueError(f"count {count} outside {self.min_count}..{self.max_count}")
        return count - self.min_count


DEFAULT_RANGE = CountRange()
