"""Three NumPy kernels without a Python loop: pairwise distances, sliding windows, a moving average.

Read README.md first (``dlkata show vectorization``). Replace each ``raise NotImplementedError`` with
your code; check with ``dlkata check vectorization``. ``plain_lists.py`` next to this file holds the
plain-Python versions your code is timed against (read it, time it, do not import it here).

No Python-level loops anywhere in this file: no ``for`` / ``while``, no comprehensions or generator
expressions, no ``map`` / ``filter`` / ``functools.reduce``, no ``np.vectorize`` / ``np.frompyfunc`` /
``np.apply_along_axis`` / ``np.fromiter``. Forbidden: ``numpy.lib.stride_tricks.sliding_window_view``.
"""

import numpy as np


def pairwise_sq_dists(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of X (n, d) and Y (m, d): float64 (n, m), never < 0.

    Inputs of any real dtype are converted to float64 first; ValueError if the d's differ. At least 10x
    faster than ``plain_lists.pairwise_sq_dists_lists`` on 600 x 64 inputs.
    """
    raise NotImplementedError("pairwise_sq_dists")


def sliding_windows(x: np.ndarray, window: int) -> np.ndarray:
    """Windows of the 1-D x as a (n - window + 1, window) array whose row i is x[i : i + window].

    A read-only VIEW: shares x's memory (whatever x's stride, e.g. x[::3] or x[::-1]), copies nothing,
    keeps x's dtype, and is not writeable. ValueError unless 1 <= window <= len(x).
    """
    raise NotImplementedError("sliding_windows")


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of each window of the 1-D x: float64 array of shape (n - window + 1,).

    O(n) whatever the window, accumulated in float64 even for float32 or integer x.
    ValueError unless 1 <= window <= len(x).
    """
    raise NotImplementedError("moving_average")
