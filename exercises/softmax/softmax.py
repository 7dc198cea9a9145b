"""Softmax four ways: a function, its log, a module, and an autograd.Function.

Read README.md first (``dlkata show softmax``). Replace each ``raise NotImplementedError`` with your code;
check with ``dlkata check softmax``. Forbidden: any API that computes a softmax or log-sum-exp for you.
"""

import torch
from torch import Tensor


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Softmax of ``x`` along ``dim``, finite for logits as large as +-1e4; same shape and dtype as ``x``."""
    raise NotImplementedError("softmax")


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """log(softmax(x)) along ``dim``, computed stably: log_softmax([0., -1000.]) is about [0., -1000.]."""
    raise NotImplementedError("log_softmax")


class Softmax(torch.nn.Module):
    """A module like ``torch.nn.Softmax(dim)``: no parameters."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        raise NotImplementedError("Softmax.__init__")

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("Softmax.forward")


class SoftmaxFunction(torch.autograd.Function):
    """Softmax as an autograd.Function, used as ``SoftmaxFunction.apply(x, dim)``; write backward by hand."""

    @staticmethod
    def forward(ctx, x: Tensor, dim: int) -> Tensor:
        raise NotImplementedError("SoftmaxFunction.forward")

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        raise NotImplementedError("SoftmaxFunction.backward")
