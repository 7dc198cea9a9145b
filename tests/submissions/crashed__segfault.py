"""expect: crashed -- a segmentation fault through ctypes."""
import ctypes


def softmax(x, dim=-1):
    return ctypes.string_at(0)
