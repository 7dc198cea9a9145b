"""GroupViT's grouping block: assign tokens to groups with a straight-through Gumbel-softmax.

Read README.md first (``dlkata show group_block``). Replace each ``raise NotImplementedError`` with your
code; check with ``dlkata check group_block``. Forbidden: ``torch.nn.functional.gumbel_softmax``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, dim: int = -1,
                   generator: torch.Generator | None = None) -> Tensor:
    """A Gumbel-softmax sample along ``dim``: softmax((logits + g) / tau), g ~ Gumbel(0, 1) i.i.d.

    * All the noise is drawn with ``generator`` (``None``: torch's global RNG).
    * ``hard=False``: the soft sample; non-negative, sums to 1 along ``dim``.
    * ``hard=True``: forward value is the one-hot of the soft sample's argmax along ``dim`` (an exact sample
      of Categorical(softmax(logits))); backward is the soft sample's gradient (straight-through).
    * Same shape and dtype as ``logits``.
    """
    raise NotImplementedError("gumbel_softmax")


def hard_softmax(logits: Tensor, dim: int = -1) -> Tensor:
    """One-hot of the argmax of ``logits`` along ``dim`` forward, softmax(logits)'s gradient backward; no noise."""
    raise NotImplementedError("hard_softmax")


class AssignAttention(torch.nn.Module):
    """GroupViT's assignment: groups (queries) take tokens (keys and values), normalised over the GROUPS.

    Submodules ``q_proj``, ``k_proj``, ``v_proj``, ``proj``: each ``torch.nn.Linear(dim, dim)``.
    """

    def __init__(self, dim: int, hard: bool = True, gumbel: bool = True, tau: float = 1.0,
                 assign_eps: float = 1.0) -> None:
        super().__init__()
        raise NotImplementedError("AssignAttention.__init__")

    def forward(self, groups: Tensor, tokens: Tensor,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """groups (B, G, D), tokens (B, N, D) -> (new groups (B, G, D), assignment A (B, G, N)).

        logits = q_proj(groups) @ k_proj(tokens)^T / sqrt(D)                                (B, G, N)
        A      = over dim 1 (the groups): gumbel_softmax(logits, tau, hard, dim=1, generator) if gumbel and
                 self.training; otherwise hard_softmax (hard) or softmax (not hard), without noise or tau
        new    = proj((A / (A.sum(-1, keepdim=True) + assign_eps)) @ v_proj(tokens))          (B, G, D)
        """
        raise NotImplementedError("AssignAttention.forward")
