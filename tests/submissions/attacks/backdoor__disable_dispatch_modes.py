"""Forbidden API by the back door: pop the dispatch guard off the mode stack with
torch.utils._python_dispatch._disable_current_modes() around an aten softmax; it is back on the stack
before the function returns, so the stack check sees nothing wrong; nothing is left
to see at run time (stopped by the scan)."""
import torch as _torch
from torch.utils._python_dispatch import _disable_current_modes as _no_modes


def softmax(x, dim=-1):
    with _no_modes():
        return getattr(_torch._C._VariableFunctions, "_soft" + "max")(x, dim, False)


def log_softmax(x, dim=-1):
    with _no_modes():
        return getattr(_torch._C._VariableFunctions, "_log_soft" + "max")(x, dim, False)
