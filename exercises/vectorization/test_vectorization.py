"""Public tests for vectorization: run them with `dlkata check vectorization` (or `pytest exercises/vectorization`).

The hidden tests also time pairwise_sq_dists against plain_lists.py (>= 10x) and moving_average for
window 2 vs 20_000 (O(n)); time your code yourself with plain_lists.py.
"""

import ast

import numpy as np


def pairwise(m, X, Y):
    return m.pairwise_sq_dists(X, Y)


def view_facts(m, window):
    x = np.arange(12, dtype=np.float64)
    out = m.sliding_windows(x[::2], window)
    return np.array(out), bool(out.flags.writeable), bool(np.may_share_memory(out, x))


def average(m, x, window):
    return m.moving_average(x, window)


def shapes(m):
    x = np.arange(6.0)
    return m.pairwise_sq_dists(x.reshape(3, 2), x.reshape(3, 2)).shape, m.sliding_windows(x, 2).shape, \
        m.moving_average(x, 2).shape


def test_pairwise_small(submission):
    X = np.array([[0.0, 0.0], [1.0, 2.0]])
    Y = np.array([[1.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    D = submission.run(pairwise, X, Y).numpy()
    assert D.dtype == np.float64 and D.shape == (2, 3), f"expected a (2, 3) float64 array, got {D.dtype} {D.shape}"
    assert np.allclose(D, [[1.0, 0.0, 25.0], [4.0, 5.0, 8.0]], rtol=1e-12, atol=1e-12), f"wrong distances:\n{D}"


def test_sliding_windows_of_a_strided_x(submission):
    values, writeable, shares = submission.run(view_facts, 3)
    assert np.array_equal(values.numpy(), [[0, 2, 4], [2, 4, 6], [4, 6, 8], [6, 8, 10]]), (
        f"sliding_windows(x[::2], 3) with x = arange(12) is wrong:\n{values}")
    assert shares, "sliding_windows must be a view sharing memory with x"
    assert not writeable, "sliding_windows must not be writeable"


def test_moving_average_small(submission):
    y = submission.run(average, np.array([1, 2, 3, 4, 5], dtype=np.int64), 2).numpy()
    assert y.dtype == np.float64, f"moving_average must return float64, got {y.dtype}"
    assert np.allclose(y, [1.5, 2.5, 3.5, 4.5], rtol=1e-12, atol=0), f"moving_average([1..5], 2) is wrong: {y}"


def test_bad_window(submission):
    for window in (0, 6):
        submission.raises(ValueError, average, np.arange(5.0), window,
                          msg=f"moving_average(x, {window}) with len(x) = 5 must raise ValueError")


def test_no_loops(submission):
    submission.run(shapes)
    loops = [type(n).__name__ for n in ast.walk(submission.tree())
             if isinstance(n, (ast.For, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp))]
    assert not loops, f"vectorization.py must not loop in Python; found {loops}"
