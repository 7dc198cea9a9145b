"""Forbidden API by the back door: exclude the Python dispatch key (where TorchDispatchMode lives) with
torch._C._ExcludeDispatchKeyGuard around an aten softmax; nothing is left
to see at run time (stopped by the scan)."""
import torch as _torch

_KEYS = _torch._C.DispatchKeySet(_torch._C.DispatchKey.Python) | _torch._C.DispatchKeySet(
    _torch._C.DispatchKey.PythonTLSSnapshot)


def softmax(x, dim=-1):
    with _torch._C._ExcludeDispatchKeyGuard(_KEYS):
        return getattr(_torch._C._VariableFunctions, "_soft" + "max")(x, dim, False)


def log_softmax(x, dim=-1):
    with _torch._C._ExcludeDispatchKeyGuard(_KEYS):
        return getattr(_torch._C._VariableFunctions, "_log_soft" + "max")(x, dim, False)
