"""Public tests for ``generators``: quick checks while you work (``dlkata check generators``).

The graded tests are stricter: they drive ``yield_from`` with random next/send/throw/close scripts and
compare every step with a real ``yield from``.
"""

from grader.testing import points


def echo(log):
    """Yields 0, 1, 2; records what it is sent; recovers from a thrown ValueError; returns a summary."""
    i = 0
    while i < 3:
        try:
            sent = yield i
            log.append(sent)
            i += 1
        except ValueError as exc:
            log.append(f"caught {exc}")
    return ("echo done", i)


def three_and_return():
    yield "a"
    yield "b"
    yield "c"
    return "the end"


# -- probes --------------------------------------------------------------------------------------------

def predicted(m):
    return m.predicted_output()


def lists(m):
    return [list(m.get_iter(i)) for i in (1, 2, 0, 7)]


def collected(m):
    return m.collect(three_and_return())


def next_until_done(m):
    gen = m.yield_from(three_and_return())
    items = []
    try:
        while True:
            items.append(next(gen))
    except StopIteration as stop:
        return items, stop.value


def send_and_throw(m):
    log = []
    gen = m.yield_from(echo(log))
    out = [next(gen), gen.send("hello"), gen.throw(ValueError("oops"))]
    try:
        gen.send("last")
        gen.send("again")
    except StopIteration as stop:
        out.append(("stop", stop.value))
    return out, log


# -- tests ----------------------------------------------------------------------------------------------

def test_predicted_output_is_a_list_of_ints(submission):
    got = submission.run(predicted)
    assert isinstance(got, list) and all(type(v) is int for v in got), (
        f"predicted_output() must return a list of ints (one per printed line), got {got!r}")


def test_get_iter(submission):
    assert submission.run(lists) == [[0, 1], [3, 4], list(range(10)), list(range(10))], (
        "get_iter(1), get_iter(2), get_iter(0), get_iter(7) must give [0, 1], [3, 4], 0..9, 0..9")


def test_collect_keeps_the_return_value(submission):
    assert submission.run(collected) == (["a", "b", "c"], "the end"), (
        "collect(gen) must return (['a', 'b', 'c'], 'the end') for a generator that yields a, b, c and "
        "returns 'the end'")


@points(2)
def test_yield_from_yields_and_returns(submission):
    assert submission.run(next_until_done) == (["a", "b", "c"], "the end"), (
        "yield_from(sub) must yield a, b, c, then raise StopIteration('the end')")


@points(2)
def test_yield_from_forwards_send_and_throw(submission):
    out, log = submission.run(send_and_throw)
    assert out == [0, 1, 1, ("stop", ("echo done", 3))], f"next, send, throw, send, send gave {out}"
    assert log == ["hello", "caught oops", "last", "again"], f"the sub-generator saw {log}"
