"""Generators: the ``return``-inside-a-generator puzzle, ``yield from`` by hand, a generator's return value.

Read README.md first (``dlkata show generators``). Replace each ``raise NotImplementedError`` with your
code; check with ``dlkata check generators``. Forbidden: the ``yield from`` statement inside ``yield_from``
(and inside any helper of this module that ``yield_from`` uses).
"""

from collections.abc import Generator, Iterator
from typing import Any


def predicted_output() -> list[int]:
    """The integers the puzzle snippet in README.md prints, in order (one per printed line)."""
    raise NotImplementedError("predicted_output")


def get_iter(id: int) -> Iterator[int]:
    """What the puzzle's author meant: id 1 -> 0, 1; id 2 -> 3, 4; any other id -> 0, 1, ..., 9.

    Returns an iterator (``iter(it) is it``); each call returns a fresh, independent one.
    """
    raise NotImplementedError("get_iter")


def yield_from(subgen: Generator) -> Generator:
    """A new generator that behaves exactly like ``yield from subgen`` (PEP 380), written without it.

    It yields what ``subgen`` yields; ``next``, ``send``, ``throw`` and ``close`` on it reach ``subgen``;
    it returns (``StopIteration.value``) what ``subgen`` returns. Nothing runs before the first ``next``.
    """
    raise NotImplementedError("yield_from")


def collect(gen: Generator) -> tuple[list, Any]:
    """``(items, value)``: every item ``gen`` yields, in order, and the value its ``return`` gave (None if
    it just ended). Any other exception ``gen`` raises propagates unchanged."""
    raise NotImplementedError("collect")
