"""The group's mass is divided without assign_eps (A / A.sum(-1)).

GroupViT's grouping block: tokens are *assigned* to groups with a (straight-through) Gumbel-softmax.

Gumbel-max trick. If g_1..g_n are i.i.d. Gumbel(0, 1), then

    P(argmax_i (l_i + g_i) = k) = softmax(l)_k

so argmax(l + g) is an exact sample of Categorical(softmax(l)). A Gumbel(0, 1) draw is g = -log(E) with
E ~ Exponential(1), i.e. -log(-log U) with U ~ Uniform(0, 1). Relaxing the argmax with a temperature:

    gumbel_softmax(l) = softmax((l + g) / tau)                soft sample on the simplex; tau -> 0: one-hot
    hard forward      = one_hot(argmax(l + g))                 (tau does not change the argmax)
    hard backward     = d softmax((l + g) / tau) / d l         straight-through estimator:
                        y = y_hard - stop_grad(y_soft) + y_soft   (value y_hard, gradient of y_soft)
    hard_softmax(l)   = one_hot(argmax l) forward, d softmax(l) / d l backward (no noise)

The Jacobian of s = softmax(z / tau) with respect to z is (diag(s) - s s^T) / tau.

AssignAttention, with groups Z (B, G, D) as queries and tokens X (B, N, D) as keys and values:

    logits = q_proj(Z) @ k_proj(X)^T / sqrt(D)                                 (B, G, N)
    A      = assign(logits) over the GROUP axis (dim 1): each token's column sums to 1 over G groups
             gumbel_softmax(tau, hard)   if gumbel and training
             hard_softmax or softmax     otherwise (no noise, no tau)
    Z'     = proj( A / (sum_n A + assign_eps) @ v_proj(X) )                     (B, G, D)

Cross-attention would normalise over tokens (dim -1): every group would take a convex mix of all tokens
and one token could feed every group. Normalising over groups makes groups compete for each token (a
hard assignment partitions the tokens); dividing by the group's total mass (+ eps, for groups that
received no token) then averages the tokens each group won.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _one_hot_argmax(y: Tensor, dim: int) -> Tensor:
    index = y.argmax(dim, keepdim=True)
    return torch.zeros_like(y).scatter_(dim, index, 1.0)


def _straight_through(y_hard: Tensor, y_soft: Tensor) -> Tensor:
    """Value of ``y_hard``, gradient of ``y_soft``."""
    return y_hard - y_soft.detach() + y_soft


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, dim: int = -1,
                   generator: torch.Generator | None = None) -> Tensor:
    """softmax((logits + g) / tau) along ``dim`` with g ~ Gumbel(0, 1) drawn from ``generator``.

    ``hard``: the one-hot of the argmax in the forward pass, the soft sample's gradient in the backward pass.
    """
    exponential = torch.empty_like(logits).exponential_(generator=generator)  # E ~ Exp(1)
    gumbels = -exponential.log()                                               # g ~ Gumbel(0, 1)
    y_soft = torch.softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    return _straight_through(_one_hot_argmax(y_soft, dim), y_soft)


def hard_softmax(logits: Tensor, dim: int = -1) -> Tensor:
    """One-hot argmax of ``logits`` along ``dim`` forward, the gradient of softmax(logits) backward."""
    y_soft = torch.softmax(logits, dim)
    return _straight_through(_one_hot_argmax(y_soft, dim), y_soft)


class AssignAttention(torch.nn.Module):
    """GroupViT's assignment: groups (queries) take tokens (keys/values), normalised over the groups."""

    def __init__(self, dim: int, hard: bool = True, gumbel: bool = True, tau: float = 1.0,
                 assign_eps: float = 1.0) -> None:
        super().__init__()
        self.hard, self.gumbel, self.tau, self.assign_eps = hard, gumbel, tau, assign_eps
        self.scale = 1.0 / math.sqrt(dim)
        self.q_proj = torch.nn.Linear(dim, dim)
        self.k_proj = torch.nn.Linear(dim, dim)
        self.v_proj = torch.nn.Linear(dim, dim)
        self.proj = torch.nn.Linear(dim, dim)

    def assign(self, logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(B, G, N) -> (B, G, N), normalised over the groups (dim 1)."""
        if self.gumbel and self.training:
            return gumbel_softmax(logits, self.tau, self.hard, dim=1, generator=generator)
        if self.hard:
            return hard_softmax(logits, dim=1)
        return torch.softmax(logits, dim=1)  # tau belongs to the Gumbel branch only

    def forward(self, groups: Tensor, tokens: Tensor,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        q = self.q_proj(groups)                                  # (B, G, D)
        k = self.k_proj(tokens)                                  # (B, N, D)
        v = self.v_proj(tokens)                                  # (B, N, D)
        logits = q @ k.transpose(-2, -1) * self.scale            # (B, G, N)
        a = self.assign(logits, generator)                       # (B, G, N), columns sum to 1
        weights = a / a.sum(-1, keepdim=True)  # (B, G, N), rows average their tokens
        return self.proj(weights @ v), a                         # (B, G, D), (B, G, N)
