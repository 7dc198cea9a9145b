"""One augmented matrix product: pairwise distances come from a single product of [x, |x|^2, 1] with
[-2y, 1, |y|^2] (clipped with ``np.clip``); windows via ``as_strided`` whose writeable flag is cleared
afterwards; the moving average subtracts the shifted float64 ``np.cumsum`` in place, without a zero
prefix.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided


def _check_window(x: np.ndarray, window: int) -> None:
    if window <= 0 or window > x.shape[0]:
        raise ValueError(f"window must be in [1, {x.shape[0]}], got {window}")


def pairwise_sq_dists(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"dimension mismatch: {X.shape[1]} vs {Y.shape[1]}")
    ones_x = np.ones((X.shape[0], 1))
    ones_y = np.ones((Y.shape[0], 1))
    xa = np.hstack([X, np.square(X).sum(axis=1, keepdims=True), ones_x])
    ya = np.hstack([-2.0 * Y, ones_y, np.square(Y).sum(axis=1, keepdims=True)])
    return np.clip(np.dot(xa, ya.T), 0.0, None)


def sliding_windows(x: np.ndarray, window: int) -> np.ndarray:
    _check_window(x, window)
    step = x.strides[0]
    view = as_strided(x, shape=(x.shape[0] - window + 1, window), strides=(step, step))
    view.flags.writeable = False
    return view


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    _check_window(x, window)
    c = np.cumsum(x, dtype=np.float64)
    sums = c[window - 1:].copy()
    sums[1:] -= c[: c.shape[0] - window]
    return sums / window
