"""Why today's LLMs are decoder-only: the causal mask, full-rank attention, and the KV cache.

Read README.md first (``dlkata show causal_mask``). Replace each ``raise NotImplementedError`` with your
code; check with ``dlkata check causal_mask``. Forbidden: ``scaled_dot_product_attention`` and
``torch.nn.attention``. ``torch.tril``, ``torch.triu`` and ``torch.softmax`` are allowed.
"""

import math

import torch
from torch import Tensor


def causal_mask(seq_len: int, device=None) -> Tensor:
    """(L, L) bool tensor on ``device``: True where key j <= query i (the diagonal included).

    ``seq_len < 0`` raises ValueError; ``seq_len == 0`` gives a (0, 0) tensor.
    """
    raise NotImplementedError("causal_mask")


def additive_causal_mask(seq_len: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """(L, L) tensor of the floating ``dtype``: 0 where j <= i, -inf where j > i."""
    raise NotImplementedError("additive_causal_mask")


def causal_attention_weights(q: Tensor, k: Tensor) -> Tensor:
    """softmax(q k^T / sqrt(d) + causal mask) over the last dim.

    q, k (..., L, d) with the same leading dims -> (..., L, L), same dtype as q; exactly 0 above the
    diagonal. Different lengths for q and k raise ValueError.
    """
    raise NotImplementedError("causal_attention_weights")


def causal_log_det(weights: Tensor) -> Tensor:
    """log|det| of lower-triangular matrices ``weights`` (..., L, L), read off the diagonal -> shape (...).

    Must stay finite when the determinant itself underflows (L in the hundreds).
    """
    raise NotImplementedError("causal_log_det")


class KVCache:
    """The keys and values of every position decoded so far (concatenated along dim -2)."""

    def __init__(self) -> None:
        raise NotImplementedError("KVCache.__init__")

    def append(self, k: Tensor, v: Tensor) -> None:
        """Add t new positions: k (..., t, d), v (..., t, dv)."""
        raise NotImplementedError("KVCache.append")

    def attend(self, q: Tensor) -> Tensor:
        """q (..., t, d) holds the queries of the LAST t cached positions (t may differ from the last
        append's size); each attends causally to every cached position up to and including its own.

        Returns (..., t, dv). Before any append, or with t larger than the cache, raises ValueError.
        """
        raise NotImplementedError("KVCache.attend")


def incremental_decode(q: Tensor, k: Tensor, v: Tensor, step_sizes: list[int]) -> Tensor:
    """Feed q, k (..., L, d) and v (..., L, dv) through a KVCache in chunks of ``step_sizes`` positions
    (append the chunk's keys and values, then attend its queries) and concatenate: (..., L, dv), equal to
    full causal attention. Sizes not all positive, or not summing to L, raise ValueError.
    """
    raise NotImplementedError("incremental_decode")
