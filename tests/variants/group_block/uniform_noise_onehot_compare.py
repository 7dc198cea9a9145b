"""Uniform noise and comparison one-hot: draws Gumbel noise as -log(-log U) with ``torch.rand`` (U clamped
away from 0 and 1), computes the soft sample as ``exp(log_softmax(.))``, builds the one-hot by comparing
an arange with the argmax, applies straight-through as ``y_soft + (y_hard - y_soft).detach()`` via a
shared helper, and computes AssignAttention with ``bmm`` / ``transpose`` and a division by sqrt(D).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _straight_through(scores: Tensor, y_soft: Tensor, dim: int) -> Tensor:
    d = dim % scores.dim()
    size = scores.shape[d]
    shape = [1] * scores.dim()
    shape[d] = size
    positions = torch.arange(size, device=scores.device).view(shape)
    hot = scores.detach().argmax(dim=d, keepdim=True)
    y_hard = (positions == hot).to(y_soft.dtype)
    return y_soft + (y_hard - y_soft).detach()


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, dim: int = -1,
                   generator: torch.Generator | None = None) -> Tensor:
    u = torch.rand(logits.shape, dtype=logits.dtype, device=logits.device, generator=generator)
    tiny = torch.finfo(logits.dtype).tiny
    u = u.clamp(min=tiny, max=1.0 - torch.finfo(logits.dtype).eps)
    g = -torch.log(-torch.log(u))
    y_soft = torch.log_softmax((logits + g) / tau, dim=dim).exp()
    return _straight_through(y_soft, y_soft, dim) if hard else y_soft


def hard_softmax(logits: Tensor, dim: int = -1) -> Tensor:
    return _straight_through(logits, torch.softmax(logits, dim=dim), dim)


class AssignAttention(torch.nn.Module):
    def __init__(self, dim: int, hard: bool = True, gumbel: bool = True, tau: float = 1.0,
                 assign_eps: float = 1.0) -> None:
        super().__init__()
        self.dim = dim
        self.use_hard = hard
        self.use_gumbel = gumbel
        self.temperature = tau
        self.eps = assign_eps
        for name in ("q_proj", "k_proj", "v_proj", "proj"):
            setattr(self, name, torch.nn.Linear(dim, dim, bias=True))

    def forward(self, groups: Tensor, tokens: Tensor,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        scores = torch.bmm(self.q_proj(groups), self.k_proj(tokens).transpose(1, 2)) / math.sqrt(self.dim)
        if self.training and self.use_gumbel:
            assign = gumbel_softmax(scores, tau=self.temperature, hard=self.use_hard, dim=1, generator=generator)
        elif self.use_hard:
            assign = hard_softmax(scores, dim=1)
        else:
            assign = torch.softmax(scores, dim=1)
        mass = assign.sum(dim=2, keepdim=True) + self.eps
        pooled = torch.bmm(assign / mass, self.v_proj(tokens))
        return self.proj(pooled), assign
