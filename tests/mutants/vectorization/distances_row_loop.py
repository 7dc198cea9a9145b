"""pairwise_sq_dists loops over the rows of X in Python (vectorised inside, still a loop)."""


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
    D = np.empty((X.shape[0], Y.shape[0]))
    for i in range(X.shape[0]):
        D[i] = ((X[i] - Y) ** 2).sum(axis=1)
    return D


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
