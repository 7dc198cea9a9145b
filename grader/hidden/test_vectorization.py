"""Hidden tests for ``vectorization``. Probes run in the sandbox and return raw outputs and raw
observations (timings, flags, memory overlap); every verdict is here.

Strided inputs are built inside the probes: a pickled ``x[::3]`` would arrive as a contiguous copy.
"""

import ast
import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.testing import data_seed, points

LOOP_NODES = {ast.For: "a for loop", ast.AsyncFor: "a for loop", ast.While: "a while loop",
              ast.ListComp: "a list comprehension", ast.SetComp: "a set comprehension",
              ast.DictComp: "a dict comprehension", ast.GeneratorExp: "a generator expression"}
BUILTIN_LOOPS = {"map", "filter", "reduce"}  # as plain names or functools.reduce (np.add.reduce is fine)
NUMPY_LOOPS = {"vectorize", "frompyfunc", "apply_along_axis", "apply_over_axes", "fromiter"}


# -- the plain-list version shipped as exercises/vectorization/plain_lists.py (same code) ----------------

def pairwise_sq_dists_lists(X, Y):
    out = []
    for x in X:
        row = []
        for y in Y:
            s = 0.0
            for a, b in zip(x, y):
                diff = a - b
                s += diff * diff
            row.append(s)
        out.append(row)
    return out


# -- helpers (test process) -------------------------------------------------------------------------------

def as_numpy(value, what):
    assert hasattr(value, "numpy"), f"{what} must return a numpy array, got {type(value).__name__}"
    return value.numpy()


def make_view(base, view):
    """The same strided views on both sides of the sandbox."""
    if view == "contiguous":
        return base
    if view == "step3":
        return base[::3]
    if view == "reversed":
        return base[::-1]
    if view == "column":  # stride of a whole row
        return base.reshape(-1, 4)[:, 1]
    if isinstance(view, int):
        return base[::view]
    raise KeyError(view)


def windows_ref(x, window):
    return np.array([x[i:i + window] for i in range(len(x) - window + 1)]).reshape(-1, window)


def assert_relative_to_max(actual, expected, what, rel=1e-9):
    assert actual.shape == expected.shape, f"{what} has shape {actual.shape}, expected {expected.shape}"
    scale = float(np.abs(expected).max(initial=0.0))
    err = float(np.abs(actual - expected).max(initial=0.0))
    assert err <= rel * scale or err == 0.0, (
        f"{what} is off by {err:.3g}, more than {rel:g} x the largest entry ({scale:.6g}); compute in float64")


def rng_data(seed, shape, dtype, scale=1.0, offset=0.0):
    rng = np.random.default_rng(data_seed(seed))
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-50, 51, size=shape).astype(dtype)
    return (offset + scale * rng.standard_normal(shape)).astype(dtype)


# -- probes (executed against the submission, return plain data) ---------------------------------------

def pairwise(m, X, Y):
    D = m.pairwise_sq_dists(X, Y)
    return D, str(D.dtype)


def windows(m, base, view, window):
    x = make_view(base, view)
    out = m.sliding_windows(x, window)
    return np.array(out), str(out.dtype)


def window_facts(m, view, window):
    """Observations only: overlap with x, writeable flag, and whether a write to x shows through."""
    base = np.arange(48, dtype=np.float64) * 1.5
    x = make_view(base, view)
    out = m.sliding_windows(x, window)
    facts = {"may_share_memory": bool(np.may_share_memory(out, x)), "writeable": bool(out.flags.writeable),
             "before": np.array(out)}
    try:
        out[0, 0] = -1.0
        facts["write_raised"] = None
    except ValueError as exc:
        facts["write_raised"] = str(exc)
    x[2] = 1000.0  # write through the caller's array; a view must see it
    facts["after"] = np.array(out)
    facts["x_after"] = np.array(x)
    return facts


def average(m, base, view, window):
    y = m.moving_average(make_view(base, view), window)
    return y, str(y.dtype)


def bad_window(m, name, n, window):
    return getattr(m, name)(np.arange(n, dtype=np.float64), window)


def smoke(m):
    x = np.arange(10.0)
    return (m.pairwise_sq_dists(x.reshape(5, 2), x.reshape(5, 2)).shape, m.sliding_windows(x, 3).shape,
            m.moving_average(x, 3).shape)


def time_pairwise(m, seed):
    rng = np.random.default_rng(data_seed(seed))
    X, Y = rng.standard_normal((600, 64)), rng.standard_normal((600, 64))
    learner = []
    while len(learner) < 7 and (len(learner) < 2 or sum(learner) < 3.0):
        start = time.perf_counter()
        m.pairwise_sq_dists(X, Y)
        learner.append(time.perf_counter() - start)
    Xl, Yl = X.tolist(), Y.tolist()
    start = time.perf_counter()
    pairwise_sq_dists_lists(Xl, Yl)
    return learner, time.perf_counter() - start


def time_moving_average(m, n, small, large):
    x = np.random.default_rng(data_seed(0)).standard_normal(n)
    t_small, t_large = [], []
    for _ in range(5):
        for window, times in ((small, t_small), (large, t_large)):
            start = time.perf_counter()
            m.moving_average(x, window)
            times.append(time.perf_counter() - start)
    return t_small, t_large


# -- tests: pairwise_sq_dists -------------------------------------------------------------------------------

@points(3)
@given(n=st.integers(0, 7), m=st.integers(0, 7), d=st.integers(1, 5),
       dtype=st.sampled_from(["float64", "float32", "int64"]), scale=st.sampled_from([1e-3, 1.0, 1e3]),
       seed=st.integers(0, 100))
def test_pairwise_values_any_shape_and_dtype(submission, n, m, d, dtype, scale, seed):
    X, Y = rng_data(seed, (n, d), dtype, scale), rng_data(seed + 1, (m, d), dtype, scale)
    D, kind = submission.run(pairwise, X, Y)
    assert kind == "float64", f"pairwise_sq_dists must return float64 (for {dtype} inputs too), got {kind}"
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    expected = ((X64[:, None, :] - Y64[None, :, :]) ** 2).sum(-1)
    assert_relative_to_max(as_numpy(D, "pairwise_sq_dists"), expected,
                           f"pairwise_sq_dists of ({n}, {d}) and ({m}, {d}) {dtype} inputs")


@points(2)
def test_pairwise_never_negative(submission):
    X = rng_data(3, (60, 16), "float64", scale=1.0, offset=1e4)  # far from the origin: ||x||^2 ~ 1.6e9
    for Y, what in ((X, "X with itself"), (X + 1e-7, "X with X + 1e-7")):
        D = as_numpy(submission.run(pairwise, X, Y)[0], "pairwise_sq_dists")
        assert D.min() >= 0, (f"pairwise_sq_dists of {what} (points near 1e4) has a negative entry {D.min():.3g}: "
                              "||x||^2 + ||y||^2 - 2 x.y cancels, clamp the result at 0")
        expected = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
        assert_relative_to_max(D, expected, f"pairwise_sq_dists of {what}", rel=1e-6)


def test_pairwise_float32_inputs_use_float64(submission):
    X, Y = rng_data(5, (30, 8), "float32", offset=3.0), rng_data(6, (20, 8), "float32", offset=3.0)
    D, kind = submission.run(pairwise, X, Y)
    assert kind == "float64", f"pairwise_sq_dists must return float64 for float32 inputs, got {kind}"
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    assert_relative_to_max(as_numpy(D, "pairwise_sq_dists"), ((X64[:, None] - Y64[None]) ** 2).sum(-1),
                           "pairwise_sq_dists of float32 inputs (convert to float64 before computing)")


def test_pairwise_mismatched_width_raises(submission):
    submission.raises(ValueError, pairwise, np.ones((3, 4)), np.ones((2, 5)),
                      msg="pairwise_sq_dists of (3, 4) and (2, 5) arrays must raise ValueError")


@points(2)
def test_pairwise_is_10x_faster_than_plain_lists(submission):
    learner, plain = submission.run(time_pairwise, 0)
    ratio = plain / min(learner)
    assert ratio >= 10, (f"pairwise_sq_dists on 600x64 inputs took {min(learner) * 1e3:.1f} ms (best of "
                         f"{len(learner)}), the plain-list version {plain * 1e3:.0f} ms in the same run: only "
                         f"{ratio:.1f}x faster, at least 10x is required (broadcasting gives about 20x, "
                         "||x||^2 + ||y||^2 - 2 X @ Y.T hundreds)")


# -- tests: sliding_windows ------------------------------------------------------------------------------

@points(2)
@settings(max_examples=30)
@given(n=st.integers(1, 30), data=st.data(), step=st.sampled_from([1, 2, 3, -1, -2]),
       dtype=st.sampled_from(["float64", "float32", "int32", "int64"]))
def test_sliding_windows_values_any_stride_and_dtype(submission, n, data, step, dtype):
    base = rng_data(n, (n * abs(step),), dtype)
    x = make_view(base, step)
    window = data.draw(st.integers(1, len(x)), label="window")
    out, kind = submission.run(windows, base, step, window)
    assert kind == dtype, f"sliding_windows must keep x's dtype {dtype}, got {kind}"
    expected = windows_ref(x, window)
    out = as_numpy(out, "sliding_windows")
    assert out.shape == expected.shape, (f"sliding_windows(x, {window}) of a length-{len(x)} x has shape "
                                         f"{out.shape}, expected {expected.shape}")
    assert np.array_equal(out, expected), (f"sliding_windows(x[::{step}], {window}) (length {len(x)}) has the "
                                           f"wrong values: row i must be x[i : i + window] (use x's own stride)")


@points(3)
def test_sliding_windows_is_a_read_only_view(submission):
    for view, window in (("contiguous", 5), ("step3", 4), ("reversed", 6), ("column", 3)):
        facts = submission.run(window_facts, view, window)
        what = f"sliding_windows of a {view} x (window {window})"
        x_before = make_view(np.arange(48, dtype=np.float64) * 1.5, view)
        assert np.array_equal(as_numpy(facts["before"], what), windows_ref(x_before, window)), (
            f"{what} has the wrong values")
        assert not facts["writeable"] and facts["write_raised"] is not None, (
            f"{what} must not be writeable (writeable=False): one element appears in several rows")
        assert facts["may_share_memory"], f"{what} does not share memory with x: it must be a view, not a copy"
        x_after = as_numpy(facts["x_after"], what)
        assert np.array_equal(as_numpy(facts["after"], what), windows_ref(x_after, window)), (
            f"after x[2] = 1000, {what} must show the new value in every window containing it: it must be a "
            "view of x itself (as_strided on x with x's stride), not of a copy")


@points(1)
def test_bad_window_raises(submission):
    for name in ("sliding_windows", "moving_average"):
        for window in (0, -1, 8):
            submission.raises(ValueError, bad_window, name, 7, window,
                              msg=f"{name}(x, {window}) with len(x) = 7 must raise ValueError")
        out = as_numpy(submission.run(bad_window, name, 7, 7), name)
        assert out.shape == ((1, 7) if name == "sliding_windows" else (1,)), (
            f"{name}(x, 7) with len(x) = 7 must give one window, got shape {out.shape}")


# -- tests: moving_average -------------------------------------------------------------------------------

@points(2)
@given(n=st.integers(1, 40), data=st.data(), step=st.sampled_from([1, 3, -1]),
       dtype=st.sampled_from(["float64", "float32", "int64", "int8"]), offset=st.sampled_from([0.0, 100.0]))
def test_moving_average_values_any_stride_and_dtype(submission, n, data, step, dtype, offset):
    base = rng_data(n + 7, (n * abs(step),), dtype, offset=offset)
    x = make_view(base, step)
    window = data.draw(st.integers(1, len(x)), label="window")
    y, kind = submission.run(average, base, step, window)
    assert kind == "float64", f"moving_average must return float64 (for {dtype} x too), got {kind}"
    expected = windows_ref(x.astype(np.float64), window).mean(axis=1)
    assert_relative_to_max(as_numpy(y, "moving_average"), expected,
                           f"moving_average(x[::{step}], {window}) of a length-{len(x)} {dtype} x")


@points(2)
def test_moving_average_accumulates_in_float64(submission):
    base = rng_data(11, (100_000,), "float32", offset=1000.0)
    y, kind = submission.run(average, base, "contiguous", 10)
    assert kind == "float64", f"moving_average must return float64, got {kind}"
    expected = np.convolve(base.astype(np.float64), np.full(10, 0.1), mode="valid")
    assert_relative_to_max(as_numpy(y, "moving_average"), expected,
                           "moving_average of 100_000 float32 values near 1000 (a float32 running sum reaches "
                           "1e8 and loses the digits: accumulate in float64)")


@points(2)
def test_moving_average_is_linear_time(submission):
    t_small, t_large = submission.run(time_moving_average, 40_000, 2, 20_000)
    small, large = min(t_small), min(t_large)
    assert large <= 10 * small + 1e-3, (
        f"moving_average of 40_000 values took {large * 1e3:.2f} ms with window 20_000 but {small * 1e3:.2f} ms "
        "with window 2: its cost grows with the window. Use prefix sums (cumsum), which are O(n) for any window")


# -- tests: no Python loops ---------------------------------------------------------------------------------

def looping_call(node):
    """The name of a call that runs a Python function per element, or None."""
    func = node.func
    if isinstance(func, ast.Name) and func.id in BUILTIN_LOOPS | NUMPY_LOOPS:
        return func.id
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else None
        if func.attr in NUMPY_LOOPS or (func.attr in BUILTIN_LOOPS and owner in ("functools", "builtins")):
            return func.attr
    return None


@points(2)
def test_no_python_loops(submission):
    submission.run(smoke)  # the stub fails here, as not implemented
    found = []
    for node in ast.walk(submission.tree()):
        for kind, what in LOOP_NODES.items():
            if isinstance(node, kind):
                found.append(f"line {node.lineno}: {what}")
        name = looping_call(node) if isinstance(node, ast.Call) else None
        if name:
            found.append(f"line {node.lineno}: {name}() (a Python-level loop)")
    assert not found, ("vectorization.py must not loop in Python (for/while, comprehensions, map/filter/reduce, "
                       "np.vectorize and friends); found " + "; ".join(found))
