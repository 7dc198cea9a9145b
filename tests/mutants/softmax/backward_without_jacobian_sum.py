"""SoftmaxFunction.backward returns y * grad_y, forgetting the -sum(grad_y * y) term."""


import torch
from torch import Tensor


def _shifted(x: Tensor, dim: int) -> Tensor:
    if x.shape[dim] == 0:  # nothing to reduce over: amax would fail on an empty dim
        return x
    return x - x.amax(dim=dim, keepdim=True).detach()  # the shift is a constant for autograd


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Numerically stable softmax of ``x`` along ``dim``; same shape and dtype as ``x``."""
    e = torch.exp(_shifted(x, dim))
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Numerically stable log-softmax: never takes the log of an underflowed probability."""
    z = _shifted(x, dim)
    return z - torch.log(torch.exp(z).sum(dim=dim, keepdim=True))


class Softmax(torch.nn.Module):
    """``torch.nn.Softmax``: no parameters, just the function applied along ``dim``."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return softmax(x, self.dim)


class SoftmaxFunction(torch.autograd.Function):
    """Softmax with the backward written by hand: ``SoftmaxFunction.apply(x, dim)``."""

    @staticmethod
    def forward(ctx, x: Tensor, dim: int) -> Tensor:
        y = softmax(x, dim)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        (y,) = ctx.saved_tensors
        grad_x = y * grad_y
        return grad_x, None  # no gradient for dim
