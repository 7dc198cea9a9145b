"""The plain-Python versions, for comparison (do not edit; the tests time their own copy of this code).

    >>> import numpy as np, time
    >>> from plain_lists import pairwise_sq_dists_lists
    >>> X = np.random.randn(600, 64)
    >>> t = time.perf_counter(); pairwise_sq_dists_lists(X.tolist(), X.tolist()); time.perf_counter() - t
"""


def pairwise_sq_dists_lists(X: list[list[float]], Y: list[list[float]]) -> list[list[float]]:
    """Squared distances between the rows of X and Y (lists of lists), one Python float at a time."""
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


def sliding_windows_lists(x: list[float], window: int) -> list[list[float]]:
    """Windows of x, each one a fresh copy."""
    return [x[i:i + window] for i in range(len(x) - window + 1)]


def moving_average_lists(x: list[float], window: int) -> list[float]:
    """Mean of each window, summing every window again: O(n * window)."""
    return [sum(x[i:i + window]) / window for i in range(len(x) - window + 1)]
