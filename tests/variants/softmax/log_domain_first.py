"""Log-domain first: computes log_softmax only and gets softmax as exp(log_softmax).

``log_softmax`` shifts by the maximum (taken with ``max(...).values`` instead of ``amax``) and subtracts the
log of the summed exponentials; ``softmax`` is its ``exp``. Empty inputs are handled by an early return,
``Softmax`` keeps its dim under another attribute name, and ``SoftmaxFunction`` saves the output and writes
the backward expanded as ``y * g - y * sum(y * g)``.
"""

import torch
from torch import Tensor


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    if x.numel() == 0:
        return x.clone()
    z = x - x.max(dim=dim, keepdim=True).values.detach()
    return z - torch.log(torch.exp(z).sum(dim=dim, keepdim=True))


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    return torch.exp(log_softmax(x, dim))


class Softmax(torch.nn.Module):
    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.reduce_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return softmax(x, self.reduce_dim)


class SoftmaxFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, dim: int) -> Tensor:
        y = softmax(x, dim)
        ctx.save_for_backward(y)
        ctx.the_dim = dim
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        (y,) = ctx.saved_tensors
        yg = y * grad_y
        return yg - y * yg.sum(dim=ctx.the_dim, keepdim=True), None
