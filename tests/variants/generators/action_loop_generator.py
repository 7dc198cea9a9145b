"""Generator with a single pending-action loop: instead of PEP 380's nested try/except ladder, each
round performs one pending action on ``subgen`` (send a value, or throw an exception), yields the result,
and records what the caller did next as the new pending action.

``GeneratorExit`` arriving at our ``yield`` closes ``subgen`` and is re-raised; any other exception
becomes a "throw" action. ``get_iter`` is a fixed generator (``yield from`` is allowed there),
``collect`` wraps the generator in a tiny delegating generator that captures the return value, and
``predicted_output`` is computed by running the puzzle snippet itself.
"""

from collections.abc import Generator, Iterator
from typing import Any


def _buggy_get_iter(id):
    if id == 1:
        yield from range(2)
    elif id == 2:
        yield from range(3, 5)
    else:
        return iter(range(10))


def predicted_output() -> list[int]:
    printed = []
    for i in range(3):
        for j in _buggy_get_iter(i):
            printed.append(int(j))
    return printed


def get_iter(id: int) -> Iterator[int]:
    def gen():
        if id == 1:
            yield from range(2)
        elif id == 2:
            yield from range(3, 5)
        else:
            yield from range(10)
    return gen()


def yield_from(subgen: Generator) -> Generator:
    action, payload = "send", None
    while True:
        try:
            if action == "send":
                out = subgen.send(payload)
            else:
                out = subgen.throw(payload)
        except StopIteration as stop:
            return stop.value
        try:
            payload = yield out
            action = "send"
        except GeneratorExit:
            subgen.close()
            raise
        except BaseException as exc:       # anything else thrown at us goes into subgen
            action, payload = "throw", exc


def collect(gen: Generator) -> tuple[list, Any]:
    box = []

    def keep_result():
        box.append((yield from gen))

    items = list(keep_result())
    return items, box[0]
