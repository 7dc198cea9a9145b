"""Resource attack: a segmentation fault through ctypes while the module is imported."""
import ctypes as _ctypes

_ctypes.string_at(0)
