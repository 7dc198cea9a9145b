"""collect reads the return value from a second StopIteration (always None)

Generators: the ``return``-inside-a-generator puzzle, ``yield from`` by hand, a generator's return value.

A function whose body contains ``yield`` (or ``yield from``) anywhere is a *generator function*: calling
it runs none of its body and returns a generator. Inside it, ``return value`` does not hand ``value`` to
whoever called the function; it *ends the iteration* by raising ``StopIteration(value)``, and a ``for``
loop swallows that StopIteration together with its value. So in the puzzle::

    get_iter(0)  ->  generator whose body runs `return iter(range(10))`  ->  StopIteration(<iterator>)
                 ->  the for loop sees an empty generator: nothing printed for i = 0

PEP 380 defines ``RESULT = yield from SUBGEN`` (for a generator SUBGEN) as::

    y = next(SUBGEN)                          # StopIteration(r) here: RESULT = r, nothing is yielded
    loop:
        s = yield y                           # hand y to our caller, wait for next/send/throw/close
          on GeneratorExit e (close):  SUBGEN.close(); raise e
          on any other exception e:    y = SUBGEN.throw(e)        # StopIteration(r): RESULT = r
          otherwise:                   y = next(SUBGEN) if s is None else SUBGEN.send(s)
                                                                  # StopIteration(r): RESULT = r

Every exception SUBGEN raises (other than StopIteration) propagates through the delegating generator.
"""

from collections.abc import Generator, Iterator
from typing import Any


def predicted_output() -> list[int]:
    """i = 0 returns from a generator (prints nothing); i = 1 prints 0, 1; i = 2 prints 3, 4."""
    return [0, 1, 3, 4]


def get_iter(id: int) -> Iterator[int]:
    """The fix: delegate in every branch (``return`` in a generator would end it instead)."""
    if id == 1:
        yield from range(2)
    elif id == 2:
        yield from range(3, 5)
    else:
        yield from range(10)


def yield_from(subgen: Generator) -> Generator:
    """``return (yield from subgen)``, spelled out as PEP 380's expansion."""
    try:
        item = next(subgen)
    except StopIteration as stop:
        return stop.value
    while True:
        try:
            sent = yield item
        except GeneratorExit:                 # close() (or throw(GeneratorExit)): close, never throw
            subgen.close()
            raise
        except BaseException as exc:          # throw(): the sub-generator may handle it and go on
            try:
                item = subgen.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:                                 # next() is send(None)
            try:
                item = next(subgen) if sent is None else subgen.send(sent)
            except StopIteration as stop:
                return stop.value


def collect(gen: Generator) -> tuple[list, Any]:
    """Drive ``gen`` with ``next`` until its StopIteration, whose ``.value`` is the return value."""
    items = [item for item in gen]
    try:
        next(gen)
    except StopIteration as stop:
        return items, stop.value
