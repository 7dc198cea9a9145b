"""Custom autograd Function: moves ``dim`` last, draws the noise in that transposed layout as -log(E) from
``torch.empty(...).exponential_`` in float64, builds the one-hot with ``F.one_hot``, and implements the
straight-through estimator as a ``torch.autograd.Function`` whose backward is softmax's explicit
vector-Jacobian product ``s * (g - <g, s>) / tau``; AssignAttention uses ``torch.einsum`` and scales the
queries before the product.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


class _OneHotSoftmaxGrad(torch.autograd.Function):
    """Along the last dim: forward one-hot(argmax(z)), backward the gradient of softmax(z / tau)."""

    @staticmethod
    def forward(ctx, z: Tensor, tau: float) -> Tensor:
        s = torch.softmax(z / tau, dim=-1)
        ctx.save_for_backward(s)
        ctx.tau = tau
        return F.one_hot(z.argmax(dim=-1), z.shape[-1]).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (s,) = ctx.saved_tensors
        inner = (grad * s).sum(dim=-1, keepdim=True)
        return s * (grad - inner) / ctx.tau, None


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, dim: int = -1,
                   generator: torch.Generator | None = None) -> Tensor:
    z = logits.movedim(dim, -1)
    e = torch.empty(z.shape, dtype=torch.float64, device=z.device).exponential_(generator=generator)
    perturbed = z - e.log().to(z.dtype)
    if hard:
        out = _OneHotSoftmaxGrad.apply(perturbed, tau)
    else:
        out = torch.softmax(perturbed / tau, dim=-1)
    return out.movedim(-1, dim)


def hard_softmax(logits: Tensor, dim: int = -1) -> Tensor:
    return _OneHotSoftmaxGrad.apply(logits.movedim(dim, -1), 1.0).movedim(-1, dim)


class AssignAttention(torch.nn.Module):
    def __init__(self, dim: int, hard: bool = True, gumbel: bool = True, tau: float = 1.0,
                 assign_eps: float = 1.0) -> None:
        super().__init__()
        self.q_proj = torch.nn.Linear(dim, dim)
        self.k_proj = torch.nn.Linear(dim, dim)
        self.v_proj = torch.nn.Linear(dim, dim)
        self.proj = torch.nn.Linear(dim, dim)
        self.hard, self.gumbel, self.tau, self.assign_eps = hard, gumbel, tau, assign_eps
        self.scale = dim ** -0.5

    def forward(self, groups: Tensor, tokens: Tensor,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        q = self.q_proj(groups) * self.scale
        logits = torch.einsum("bgd,bnd->bgn", q, self.k_proj(tokens))
        if self.gumbel and self.training:
            a = gumbel_softmax(logits, self.tau, self.hard, dim=1, generator=generator)
        elif self.hard:
            a = hard_softmax(logits, dim=1)
        else:
            a = logits.softmax(dim=1)
        weights = a / (a.sum(dim=-1, keepdim=True) + self.assign_eps)
        return self.proj(torch.einsum("bgn,bnd->bgd", weights, self.v_proj(tokens))), a
