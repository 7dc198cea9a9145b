"""Class-based: ``yield_from`` returns an instance of a hand-written Generator class (an explicit state
machine: created / suspended / finished) instead of a generator function following PEP 380's expansion.

Each protocol method (``send``, ``throw``, ``close``) inspects the state, forwards to ``subgen`` and turns
``subgen``'s ``StopIteration`` into its own, marking itself finished on any exception, exactly as a
delegating generator's frame would. ``__del__`` closes a suspended instance, like a generator's
finaliser. ``get_iter`` returns plain ``iter(range(...))`` objects, ``collect`` drives the generator with
``next`` in a while loop, and ``predicted_output`` is the hand-derived answer.
"""

from collections.abc import Generator, Iterator
from typing import Any

_CREATED, _SUSPENDED, _FINISHED = "created", "suspended", "finished"


def predicted_output() -> list[int]:
    # get_iter(0) is a generator (its body has `yield from`), so `return iter(range(10))` just stops it.
    return [0, 1, 3, 4]


def get_iter(id: int) -> Iterator[int]:
    if id == 1:
        return iter(range(2))
    if id == 2:
        return iter(range(3, 5))
    return iter(range(10))


class _Delegator(Generator):
    def __init__(self, subgen):
        self._sub = subgen
        self._state = _CREATED

    def __iter__(self):
        return self

    def __next__(self):
        return self.send(None)

    def _forward(self, call):
        """Run ``call()`` on the sub-generator as the delegating frame would, tracking our state."""
        try:
            value = call()
        except StopIteration as stop:
            self._state = _FINISHED
            raise StopIteration(stop.value) from None
        except BaseException:
            self._state = _FINISHED
            raise
        self._state = _SUSPENDED
        return value

    def send(self, value):
        if self._state == _FINISHED:
            raise StopIteration
        if self._state == _CREATED:
            if value is not None:
                raise TypeError("can't send non-None value to a just-started generator")
            return self._forward(lambda: next(self._sub))
        return self._forward(lambda: self._sub.send(value))

    def throw(self, typ, val=None, tb=None):
        if isinstance(typ, BaseException):
            exc = typ
        elif val is None:
            exc = typ()
        elif isinstance(val, BaseException):
            exc = val
        else:
            exc = typ(val)
        if tb is not None:
            exc = exc.with_traceback(tb)
        if self._state != _SUSPENDED:           # not started, or finished: raised here, no delegation
            self._state = _FINISHED
            raise exc
        if isinstance(exc, GeneratorExit):
            self._state = _FINISHED
            self._sub.close()                  # may raise (e.g. RuntimeError): then that propagates
            raise exc
        return self._forward(lambda: self._sub.throw(exc))

    def close(self):
        if self._state != _SUSPENDED:
            self._state = _FINISHED
            return None
        try:
            self.throw(GeneratorExit())
        except GeneratorExit:
            return None
        except StopIteration:
            return None
        raise RuntimeError("generator ignored GeneratorExit")  # unreachable: throw never yields here

    def __del__(self):
        if getattr(self, "_state", None) == _SUSPENDED:
            try:
                self.close()
            except BaseException:
                pass


def yield_from(subgen: Generator) -> Generator:
    return _Delegator(subgen)


def collect(gen: Generator) -> tuple[list, Any]:
    items = []
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return items, stop.value
        items.append(item)
