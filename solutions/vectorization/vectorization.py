"""Three NumPy kernels without a Python loop: pairwise distances, sliding windows, a moving average.

Pairwise squared distances expand the square, so the O(n m d) work is one matrix product (BLAS):

    D_ij = ||x_i - y_j||^2 = ||x_i||^2 + ||y_j||^2 - 2 x_i . y_j         D = x2[:, None] + y2[None, :] - 2 X Y^T

The subtraction cancels when x_i ~ y_j, so rounding can make D_ij slightly negative: clamp at 0.

Sliding windows re-read the same buffer with a second stride: element (i, j) of the result is x[i + j],
found at byte offset i * s + j * s for x's own stride s (s = 8 for contiguous float64, 24 for x[::3],
negative for x[::-1]). No data moves; ``writeable=False`` because every element appears in up to
``window`` rows, so a write through one row would silently change others.

The moving average is a difference of prefix sums, O(n) whatever the window, accumulated in float64:

    c_0 = 0,  c_k = x_0 + ... + x_{k-1},      mean_i = (c_{i+w} - c_i) / w,   i = 0 .. n - w
"""

import operator

import numpy as np
from numpy.lib.stride_tricks import as_strided


def _check_window(n: int, window: int) -> int:
    window = operator.index(window)
    if not 1 <= window <= n:
        raise ValueError(f"window must be in 1..{n} (the length of x), got {window}")
    return window


def _as_1d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)  # an ndarray is returned as is: a view of the caller's memory
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {x.shape}")
    return x


def pairwise_sq_dists(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (n, m) between the rows of X (n, d) and Y (m, d), float64, >= 0."""
    X = np.asarray(X, dtype=np.float64)  # (n, d)
    Y = np.asarray(Y, dtype=np.float64)  # (m, d)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must be (n, d) and (m, d), got {X.shape} and {Y.shape}")
    x2 = np.einsum("ij,ij->i", X, X)  # (n,)
    y2 = np.einsum("ij,ij->i", Y, Y)  # (m,)
    D = x2[:, None] + y2[None, :] - 2.0 * (X @ Y.T)  # (n, m)
    return np.maximum(D, 0.0, out=D)  # cancellation can leave tiny negatives


def sliding_windows(x: np.ndarray, window: int) -> np.ndarray:
    """Read-only view (n - window + 1, window) of the 1-D x: row i is x[i : i + window]."""
    x = _as_1d(x)
    window = _check_window(x.shape[0], window)
    (stride,) = x.strides  # bytes between consecutive elements of x, any sign
    return as_strided(x, shape=(x.shape[0] - window + 1, window), strides=(stride, stride), writeable=False)


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Means of the n - window + 1 windows of the 1-D x, float64, in O(n) with prefix sums."""
    x = _as_1d(x)
    window = _check_window(x.shape[0], window)
    c = np.concatenate(([0.0], np.cumsum(x, dtype=np.float64)))  # (n + 1,): c[k] = sum of x[:k]
    return (c[window:] - c[:-window]) / window  # (n - window + 1,)
