"""Additive -inf mask from `triu` plus `torch.softmax`; the KV cache holds one tensor grown by concatenation.

The boolean mask is the complement of a strict upper triangle, attention adds the additive mask to
the scores and calls `torch.softmax` in float64 before casting back, the log-determinant loops over the
diagonal entries in Python, and the cache keeps a single key tensor and a single value tensor (or
`None`), concatenating on every append; `attend` slices the mask out of a `tril` with an offset.
"""

import torch
from torch import Tensor


def causal_mask(seq_len: int, device=None) -> Tensor:
    if seq_len < 0:
        raise ValueError("negative seq_len")
    upper = torch.triu(torch.ones(seq_len, seq_len, dtype=torch.bool, device=device), diagonal=1)
    return ~upper


def additive_causal_mask(seq_len: int, dtype: torch.dtype = torch.float32) -> Tensor:
    if seq_len < 0:
        raise ValueError("negative seq_len")
    return torch.triu(torch.full((seq_len, seq_len), float("-inf"), dtype=dtype), diagonal=1)


def causal_attention_weights(q: Tensor, k: Tensor) -> Tensor:
    L = q.shape[-2]
    if k.shape[-2] != L:
        raise ValueError("length mismatch between q and k")
    scale = q.shape[-1] ** -0.5
    scores = (q.double() * scale) @ k.double().mT
    scores = scores + additive_causal_mask(L, torch.float64).to(q.device)
    return torch.softmax(scores, dim=-1).to(q.dtype)


def causal_log_det(weights: Tensor) -> Tensor:
    n = weights.shape[-1]
    total = torch.zeros(weights.shape[:-2], dtype=weights.dtype, device=weights.device)
    for i in range(n):
        total = total + weights[..., i, i].abs().log()
    return total


class KVCache:
    def __init__(self) -> None:
        self.keys: Tensor | None = None
        self.values: Tensor | None = None

    def append(self, k: Tensor, v: Tensor) -> None:
        if self.keys is None:
            self.keys, self.values = k, v
        else:
            self.keys = torch.cat([self.keys, k], dim=-2)
            self.values = torch.cat([self.values, v], dim=-2)

    def attend(self, q: Tensor) -> Tensor:
        if self.keys is None:
            raise ValueError("empty cache")
        T = self.keys.shape[-2]
        t = q.shape[-2]
        if t > T:
            raise ValueError("more queries than cached positions")
        allowed = torch.tril(torch.ones(t, T, dtype=torch.bool, device=q.device), diagonal=T - t)
        scores = (q @ self.keys.mT) * (q.shape[-1] ** -0.5)
        scores = scores.masked_fill(allowed.logical_not(), float("-inf"))
        return torch.softmax(scores, dim=-1) @ self.values


def incremental_decode(q: Tensor, k: Tensor, v: Tensor, step_sizes: list[int]) -> Tensor:
    if len(step_sizes) == 0 or min(step_sizes) < 1 or sum(step_sizes) != q.shape[-2]:
        raise ValueError("invalid step sizes")
    cache = KVCache()
    pieces = []
    for chunk_q, chunk_k, chunk_v in zip(q.split(step_sizes, -2), k.split(step_sizes, -2),
                                         v.split(step_sizes, -2)):
        cache.append(chunk_k, chunk_v)
        pieces.append(cache.attend(chunk_q))
    return torch.cat(pieces, dim=-2)
