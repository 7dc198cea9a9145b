"""Moves the reduced dim last and works on 2-D rows: an explicit loop for the running max, float32
accumulation for bfloat16, and a backward that recomputes y from the saved input.

``movedim`` brings ``dim`` to the end and ``reshape`` flattens the rest into rows; the max over the
row is taken by a Python loop of ``torch.maximum`` over the columns, the exponentials are summed with
``sum``, and the result is reshaped and moved back. Low-precision inputs are computed in float32 and cast
back. ``SoftmaxFunction`` saves the input (not the output) and recomputes y in ``backward``.
"""

import torch
from torch import Tensor


def _rows(x: Tensor, dim: int):
    xm = x.movedim(dim, -1)
    shape = xm.shape
    return xm.reshape(-1, shape[-1]), shape


def _unrows(r: Tensor, shape, dim: int, dtype) -> Tensor:
    return r.reshape(shape).movedim(-1, dim).to(dtype)


def _shifted(r: Tensor) -> Tensor:
    m = r[:, 0]
    for j in range(1, r.shape[1]):
        m = torch.maximum(m, r[:, j])
    return r - m.detach().unsqueeze(1)


def _work_dtype(x: Tensor):
    return torch.float32 if x.dtype in (torch.bfloat16, torch.float16) else x.dtype


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    if x.numel() == 0:
        return x * 1
    r, shape = _rows(x, dim)
    z = _shifted(r.to(_work_dtype(x)))
    e = z.exp()
    out = e / e.sum(dim=1, keepdim=True)
    return _unrows(out, shape, dim, x.dtype)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    if x.numel() == 0:
        return x * 1
    r, shape = _rows(x, dim)
    z = _shifted(r.to(_work_dtype(x)))
    out = z - z.exp().sum(dim=1, keepdim=True).log()
    return _unrows(out, shape, dim, x.dtype)


class Softmax(torch.nn.Module):
    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self._d = dim

    def forward(self, x: Tensor) -> Tensor:
        return softmax(x, dim=self._d)

    def extra_repr(self) -> str:
        return f"dim={self._d}"


class SoftmaxFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, dim: int) -> Tensor:
        ctx.save_for_backward(x)
        ctx.dim = dim
        return softmax(x, dim)

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        (x,) = ctx.saved_tensors
        y = softmax(x, ctx.dim)
        inner = (grad_y * y).sum(dim=ctx.dim, keepdim=True)
        return y * (grad_y - inner), None
