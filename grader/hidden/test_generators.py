"""Hidden tests for ``generators``.

Generator objects cannot cross from the sandbox, so each probe drives the learner's generator there with
a script of operations (next / send / throw / close) and returns the raw trace: what each operation gave
(a yielded value, a StopIteration value, an exception as type name + message), what the sub-generator
logged, and the sub-generator's state. The test runs the same script on a real ``yield from`` here and
compares. Every verdict is in this file.
"""

import ast
import contextlib
import inspect
import io
from collections.abc import Generator, Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from grader.testing import points

# The puzzle, exactly as README.md quotes it. Our code: the test runs it here to know what it prints.
SNIPPET = """\
def get_iter(id):
    if id==1:
        yield from range(2)
    elif id==2:
        yield from range(3,5)
    else:
        return iter(range(10))
for i in range(3):
    for j in get_iter(i):
        print(j)
"""


class Boom(Exception):
    """An exception no sub-generator here handles."""


EXCEPTIONS = {"ValueError": ValueError, "KeyError": KeyError, "RuntimeError": RuntimeError, "Boom": Boom,
              "GeneratorExit": GeneratorExit}


# -- sub-generators (run in the sandbox against the learner's code, and here against `yield from`) -------

def universal(log, n=5):
    """Yields ("item", i); recovers from ValueError and goes on; returns early on KeyError."""
    log.append("start")
    i = 0
    try:
        while i < n:
            try:
                sent = yield ("item", i)
                log.append(("got", i, sent))
                i += 1
            except ValueError as exc:
                log.append(("caught", str(exc)))
                sent = yield ("recovered", str(exc))
                log.append(("after recovery", sent))
            except KeyError as exc:
                log.append(("caught", str(exc)))
                return ("stopped early", i)
    finally:
        log.append("cleanup")
    return ("done", i)


def stubborn(log):
    """Ignores GeneratorExit: closing it raises RuntimeError."""
    for i in range(3):
        try:
            sent = yield i
            log.append(("got", sent))
        except GeneratorExit:
            log.append("ignored GeneratorExit")
    return "stubborn done"


def exit_returns(log):
    """Handles GeneratorExit by returning a value."""
    try:
        yield "only item"
        yield "second item"
    except GeneratorExit:
        log.append("exit handled")
        return "cleaned up"
    return "exit_returns done"


def empty(log):
    """Returns before yielding anything."""
    log.append("start")
    return "nothing to yield"
    yield  # noqa: unreachable; makes this a generator


def faulty(log):
    yield "fine"
    log.append("about to fail")
    raise Boom("faulty sub-generator")


SUBGENS = {f.__name__: f for f in (universal, stubborn, exit_returns, empty, faulty)}


def delegate(subgen):
    """The oracle: what the learner's yield_from must behave like."""
    return (yield from subgen)


def outer(make, subgen):
    """A generator that itself uses `yield from` on the delegating generator."""
    result = yield from make(subgen)
    sent = yield ("outer saw", result)
    return ("outer done", sent)


def build(make, shape, subgen):
    if shape == "direct":
        return make(subgen)
    if shape == "nested":
        return make(make(subgen))
    return outer(make, subgen)


def step(gen, op):
    """One operation on ``gen``, recorded as plain data."""
    try:
        if op[0] == "next":
            return ("yield", next(gen))
        if op[0] == "send":
            return ("yield", gen.send(op[1]))
        if op[0] == "throw":
            return ("yield", gen.throw(EXCEPTIONS[op[1]](op[2])))
        return ("closed", gen.close())
    except StopIteration as stop:
        return ("stop", stop.value)
    except BaseException as exc:  # GeneratorExit included
        return ("raise", type(exc).__name__, str(exc))


def drain(gen, limit=50):
    """Finish a generator so that nothing happens later when it is garbage-collected."""
    try:
        for _ in range(limit):
            next(gen)
    except BaseException:
        pass


def run_script(make, sub_name, script, shape="direct"):
    log = []
    sub = SUBGENS[sub_name](log)
    gen = build(make, shape, sub)
    trace = [step(gen, op) for op in script]
    result = {"trace": trace, "log": list(log), "state": inspect.getgeneratorstate(sub)}
    drain(gen)
    drain(sub)
    return result


# -- probes ------------------------------------------------------------------------------------------------

def drive(m, sub_name, script, shape="direct"):
    return run_script(m.yield_from, sub_name, script, shape)


def protocol(m):
    log = []
    sub = universal(log)
    gen = m.yield_from(sub)
    before = {"log": list(log), "state": inspect.getgeneratorstate(sub)}
    facts = {"is_generator": isinstance(gen, Generator), "iter_is_self": iter(gen) is gen,
             "is_subgen": gen is sub}
    trace = [step(gen, ("next",)) for _ in range(8)]
    return before, facts, trace


def predicted(m):
    return m.predicted_output()


def get_iter_lists(m, ids):
    return {i: list(m.get_iter(i)) for i in ids}, [j for i in range(3) for j in m.get_iter(i)]


def get_iter_protocol(m):
    a, b = m.get_iter(0), m.get_iter(0)
    facts = {"is_iterator": isinstance(a, Iterator), "iter_is_self": iter(a) is a, "same_object": a is b}
    firsts = [next(a, "exhausted"), next(a, "exhausted"), next(b, "exhausted")]
    return facts, firsts, list(a), list(b)


def returns_tuple():
    yield 1
    yield 2
    yield 3
    return ("total", 6)


def no_return():
    yield "a"
    yield "b"


def returns_at_once():
    return [42]
    yield


def returns_zero():
    yield None
    yield None
    return 0


def long_run():
    for i in range(10_000):
        yield i
    return "long"


def bad_items():
    yield 1
    yield 2
    raise ValueError("bad item")


COLLECT_CASES = {f.__name__: f for f in (returns_tuple, no_return, returns_at_once, returns_zero, long_run)}


def collect_all(m):
    return {name: m.collect(make()) for name, make in COLLECT_CASES.items()}


def collect_faulty(m):
    return m.collect(bad_items())


# -- helpers for the verdicts -------------------------------------------------------------------------------

def expected(sub_name, script, shape="direct"):
    return run_script(delegate, sub_name, script, shape)


def _own_errors_by_type(trace):
    """The delegator's own TypeError (send(v) before the first next()) is compared by type only: its
    wording is CPython's, and a class-based delegator may word it differently."""
    return [step[:2] if step[:2] == ("raise", "TypeError") else step for step in trace]


def check_same(actual, want, sub_name, script, what):
    where = f"{what}\n  sub-generator: {sub_name}\n  operations: {script}"
    actual = {**actual, "trace": _own_errors_by_type(actual["trace"])}
    want = {**want, "trace": _own_errors_by_type(want["trace"])}
    for i, (got, exp) in enumerate(zip(actual["trace"], want["trace"])):
        assert got == exp, (
            f"{where}\n  operation {i} {script[i]} gave {got}, but with `yield from` it gives {exp}"
            f"\n  (`yield from` gives, step by step: {want['trace']})")
    assert actual["log"] == want["log"], (
        f"{where}\n  the sub-generator saw {actual['log']}, but with `yield from` it sees {want['log']}")
    assert actual["state"] == want["state"], (
        f"{where}\n  afterwards the sub-generator is {actual['state']}, with `yield from` it is {want['state']}")


def compare(submission, sub_name, script, what, shape="direct"):
    check_same(submission.run(drive, sub_name, script, shape), expected(sub_name, script, shape),
               sub_name, script, what)


def snippet_output():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(SNIPPET, {"__name__": "puzzle"})
    return [int(line) for line in out.getvalue().split()]


NEXT = ("next",)


# -- the puzzle and get_iter ------------------------------------------------------------------------------------

@points(2)
def test_predicted_output_matches_what_the_snippet_prints(submission):
    got = submission.run(predicted)
    want = snippet_output()
    assert isinstance(got, list) and all(type(v) is int for v in got), (
        f"predicted_output() must return a list of ints, got {got!r}")
    assert got == want, (
        f"predicted_output() is {got}, but the snippet prints {want}. For i = 0, get_iter is still a generator "
        "(its body contains yield), so `return iter(range(10))` ends it at once: StopIteration, nothing printed.")


@points(2)
def test_get_iter_does_what_its_author_meant(submission):
    ids = [1, 2, 0, 3, -7, 100]
    lists, loop = submission.run(get_iter_lists, ids)
    want = {1: [0, 1], 2: [3, 4], 0: list(range(10)), 3: list(range(10)), -7: list(range(10)),
            100: list(range(10))}
    for i in ids:
        assert lists[i] == want[i], f"list(get_iter({i})) is {lists[i]}, expected {want[i]}"
    assert loop == list(range(10)) + [0, 1, 3, 4], (
        f"the puzzle's loop over the fixed get_iter must give 0..9, 0, 1, 3, 4; got {loop}")


def test_get_iter_returns_fresh_iterators(submission):
    facts, firsts, rest_a, rest_b = submission.run(get_iter_protocol)
    assert facts["is_iterator"] and facts["iter_is_self"], (
        "get_iter must return an iterator (next() works on it and iter(it) is it), not just an iterable")
    assert not facts["same_object"], "each call to get_iter must return a new iterator"
    assert firsts == [0, 1, 0] and rest_a == list(range(2, 10)) and rest_b == list(range(1, 10)), (
        f"two iterators from get_iter(0) must advance independently: got {firsts}, then {rest_a} and {rest_b}")


# -- collect -----------------------------------------------------------------------------------------------------

@points(2)
def test_collect_returns_items_and_the_return_value(submission):
    results = submission.run(collect_all)
    for name, make in COLLECT_CASES.items():
        got = results[name]
        gen = make()
        items = []
        while True:
            try:
                items.append(next(gen))
            except StopIteration as stop:
                value = stop.value
                break
        assert isinstance(got, tuple) and len(got) == 2, f"collect must return a tuple (items, value), got {got!r}"
        assert isinstance(got[0], list) and got[0] == items, (
            f"collect({name}()) items: expected the list {items[:10]}{'...' if len(items) > 10 else ''}, "
            f"got {got[0]!r:.200}")
        assert got[1] == value and type(got[1]) is type(value), (
            f"collect({name}()) value: the generator returned {value!r}, collect gave {got[1]!r}. The return "
            "value is StopIteration.value of the StopIteration that ended the generator (a for loop drops it; "
            "a later next() raises a new StopIteration without it).")


def test_collect_lets_other_exceptions_through(submission):
    err = submission.raises(ValueError, collect_faulty,
                            msg="collect must let an exception raised by the generator propagate")
    assert err.text == "bad item", f"the generator's ValueError('bad item') must propagate unchanged, got {err.text!r}"


# -- yield_from ---------------------------------------------------------------------------------------------------

def test_yield_from_is_a_lazy_generator(submission):
    before, facts, trace = submission.run(protocol)
    assert before["log"] == [] and before["state"] == "GEN_CREATED", (
        "calling yield_from(sub) must not run the sub-generator yet (like calling a generator function): "
        f"the sub-generator had already logged {before['log']} and is {before['state']}")
    assert facts["is_generator"], "yield_from must return a collections.abc.Generator (next, send, throw, close)"
    assert facts["iter_is_self"], "iter() of the delegating generator must return itself"
    assert not facts["is_subgen"], "yield_from must return a new delegating generator, not the sub-generator itself"
    _, _, want = protocol_expected()
    assert trace[:6] == want[:6], f"next() until the end gave {trace[:6]}, with `yield from`: {want[:6]}"
    assert trace[6][0] == "stop" and trace[7][0] == "stop", (
        f"once finished, next() must keep raising StopIteration; got {trace[6:]}")


def protocol_expected():
    class Stand:  # the learner's module replaced by the oracle
        yield_from = staticmethod(delegate)
    return protocol(Stand)


@points(2)
def test_yield_from_yields_everything_and_returns_the_value(submission):
    for sub_name, script in (("universal", [NEXT] * 7), ("empty", [NEXT, NEXT]), ("faulty", [NEXT, NEXT, NEXT]),
                             ("stubborn", [NEXT] * 4)):
        compare(submission, sub_name, script,
                "yield_from must yield every item and end with StopIteration(the sub-generator's return value)")


@points(2)
def test_yield_from_forwards_send(submission):
    script = [("send", None), ("send", 10), ("send", "x"), NEXT, ("send", (1, 2)), ("send", 5), NEXT]
    compare(submission, "universal", script,
            "send(v) must reach the sub-generator as the value of its yield (send(None) is next())")
    compare(submission, "stubborn", [NEXT, ("send", "a"), ("send", "b"), ("send", "c")],
            "send(v) must reach the sub-generator")


@points(3)
def test_yield_from_forwards_throw_to_a_subgen_that_recovers(submission):
    script = [NEXT, ("throw", "ValueError", "first"), ("send", 1), ("throw", "ValueError", "second"), NEXT,
              NEXT, ("throw", "ValueError", "third"), ("throw", "ValueError", "while recovering"), NEXT]
    compare(submission, "universal", script,
            "throw(exc) must raise exc inside the sub-generator; if it handles it, its next yielded value is "
            "what throw returns and the delegation goes on")


@points(2)
def test_yield_from_throw_that_ends_or_escapes_the_subgen(submission):
    compare(submission, "universal", [NEXT, NEXT, ("throw", "KeyError", "enough"), NEXT],
            "a sub-generator that handles a thrown exception by returning ends the delegation: throw raises "
            "StopIteration carrying its return value")
    for exc in ("Boom", "RuntimeError"):
        compare(submission, "universal", [NEXT, ("throw", exc, "bang"), NEXT],
                "an exception the sub-generator does not handle must come out of throw unchanged")


@points(2)
def test_yield_from_close_closes_the_subgen(submission):
    cases = (
        ("universal", [NEXT, NEXT, ("close",), NEXT, ("close",)],
         "close() must close the sub-generator (its finally runs), then the delegating generator is finished"),
        ("universal", [NEXT, ("throw", "GeneratorExit", "bye"), NEXT],
         "throw(GeneratorExit) must close the sub-generator (not throw into it) and re-raise GeneratorExit"),
        ("stubborn", [NEXT, ("close",), NEXT],
         "a sub-generator that ignores GeneratorExit makes close() raise RuntimeError out of the delegating "
         "generator, which is then finished"),
        ("exit_returns", [NEXT, ("close",), NEXT],
         "close() must close the sub-generator even when it handles GeneratorExit by returning"),
        ("universal", [("close",), NEXT],
         "close() before the first next() must leave the sub-generator untouched (yield from never ran)"),
    )
    for sub_name, script, what in cases:
        compare(submission, sub_name, script, what)


OPS = st.one_of(
    st.just(NEXT),
    st.tuples(st.just("send"), st.one_of(st.none(), st.integers(0, 9))),
    st.tuples(st.just("throw"), st.sampled_from(sorted(EXCEPTIONS)), st.sampled_from(["x", "y"])),
    st.just(("close",)),
)


@points(2)
@settings(max_examples=20)
@given(sub_name=st.sampled_from(["universal", "stubborn", "exit_returns"]), script=st.lists(OPS, min_size=1,
       max_size=10), shape=st.sampled_from(["direct", "nested"]))
def test_yield_from_random_scripts_match_yield_from(submission, sub_name, script, shape):
    what = "random operations must give what `yield from` gives" + (
        " (yield_from(yield_from(sub)))" if shape == "nested" else "")
    compare(submission, sub_name, script, what, shape)


def test_yield_from_nests_and_works_under_yield_from(submission):
    script = [NEXT, ("send", 3), ("throw", "ValueError", "deep"), ("send", 4), NEXT, NEXT, NEXT, NEXT,
              ("send", "to outer"), NEXT]
    compare(submission, "universal", script, "yield_from(yield_from(sub)) must behave like two nested `yield from`",
            "nested")
    compare(submission, "universal", script, "`yield from yield_from(sub)` inside another generator",
            "inside yield from")
    compare(submission, "universal", [NEXT, NEXT, ("close",), NEXT], "close() through two levels", "nested")


# -- static: no `yield from` in yield_from ------------------------------------------------------------------------

def _reachable_definitions(tree, start):
    """The module-level definitions of ``start`` and of every module-level name it refers to."""
    defs = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs.setdefault(node.name, []).append(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        defs.setdefault(name.id, []).append(node)
    seen, todo, found = set(), [start], []
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        for node in defs[name]:
            found.append((name, node))
            todo.extend(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
    return found


def test_yield_from_does_not_use_yield_from(submission):
    compare(submission, "universal", [NEXT] * 7, "yield_from must yield every item and return the value")
    found = _reachable_definitions(submission.tree(), "yield_from")
    assert found, "your module must define yield_from at module level"
    for name, node in found:
        for sub in ast.walk(node):
            assert not isinstance(sub, ast.YieldFrom), (
                f"line {sub.lineno}: `yield from` in {name}, which yield_from uses: the point is to write "
                "what `yield from` does (PEP 380) yourself")
            assert not (isinstance(sub, ast.Name) and sub.id in ("exec", "eval", "compile")), (
                f"line {sub.lineno}: {sub.id} in {name}: yield_from must not build code at run time")
