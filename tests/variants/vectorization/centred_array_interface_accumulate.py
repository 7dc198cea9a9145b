"""Centred expansion and a hand-built view: pairwise distances expand ||x - y||^2 after subtracting a
common centre (less cancellation), with ``@`` and ``np.maximum``; windows are built from an
``__array_interface__`` dict with strides (s, s) and a read-only data pointer (no stride_tricks);
the moving average uses ``np.add.accumulate`` of the data shifted by its first value and adds it back.
"""

import numpy as np


class _WindowInterface:
    """Exposes x's memory with a new shape and strides; holds x so the buffer outlives the view."""

    def __init__(self, x: np.ndarray, shape: tuple, strides: tuple) -> None:
        self.base = x
        iface = dict(x.__array_interface__)
        iface["shape"] = shape
        iface["strides"] = strides
        iface["data"] = (iface["data"][0], True)  # True: read-only
        self.__array_interface__ = iface


def pairwise_sq_dists(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    X = np.array(X, dtype=np.float64, ndmin=2, copy=True)
    Y = np.array(Y, dtype=np.float64, ndmin=2, copy=True)
    if X.shape[-1] != Y.shape[-1]:
        raise ValueError("X and Y must have the same number of columns")
    if X.shape[0] + Y.shape[0] > 0:
        centre = np.concatenate([X, Y]).mean(axis=0)
        X -= centre
        Y -= centre
    sq = (X * X).sum(axis=1).reshape(-1, 1) + (Y * Y).sum(axis=1).reshape(1, -1) - 2.0 * (X @ Y.T)
    return np.maximum(sq, 0.0)


def sliding_windows(x: np.ndarray, window: int) -> np.ndarray:
    n = len(x)
    if window < 1 or window > n:
        raise ValueError("need 1 <= window <= len(x)")
    s = x.strides[0]
    return np.asarray(_WindowInterface(x, (n - window + 1, window), (s, s)))


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    n = len(x)
    if window < 1 or window > n:
        raise ValueError("need 1 <= window <= len(x)")
    shift = np.float64(x[0])
    c = np.add.accumulate(x.astype(np.float64) - shift)
    ends = c[window - 1:]
    starts = np.concatenate(([0.0], c[: n - window]))
    return shift + (ends - starts) / window
