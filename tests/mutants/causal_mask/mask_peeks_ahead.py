"""the causal mask is off by one the other way: j <= i + 1 lets each position see the next one.

Causal (decoder-only) attention: the mask, why its weights are always full rank, and the KV cache.

Position i may attend to positions j <= i:

    mask[i, j] = (j <= i)                        (L, L) bool, lower triangular
    A = softmax(q k^T / sqrt(d) + M)             M[i, j] = 0 if j <= i else -inf

Full rank. A is lower triangular, and its diagonal is positive: row i always contains its own key, and
softmax gives every allowed entry exp(.) / sum > 0. So

    det A = prod_i A[i, i] > 0,      log|det A| = sum_i log A[i, i]

whatever the head dimension d. A bidirectional softmax(q k^T / sqrt(d)) is built from the rank-d matrix
q k^T and for L >> d can lose rank in practice (the "low-rank bottleneck"); the causal one cannot. The
product of L numbers below 1 underflows long before L = 1000, so the log-det is a sum of logs.

KV cache. Because row i only looks left, the keys and values of earlier positions never change once
computed: generation stores them and, at each step, attends the new queries (the last t positions,
absolute positions T - t .. T - 1 of a cache holding T) to everything cached up to their own position:

    scores[r, j] = q_r . k_j / sqrt(d),  allowed iff j <= T - t + r          (..., t, T)
"""

import math

import torch
from torch import Tensor


def causal_mask(seq_len: int, device=None) -> Tensor:
    """(L, L) bool, True where key j <= query i."""
    if seq_len < 0:
        raise ValueError(f"seq_len must be >= 0, got {seq_len}")
    i = torch.arange(seq_len, device=device)  # (L,)
    return i.unsqueeze(0) <= i.unsqueeze(1) + 1  # [i, j] = j <= i + 1


def additive_causal_mask(seq_len: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """(L, L) of ``dtype``: 0 where j <= i, -inf elsewhere (added to the scores before softmax)."""
    zeros = torch.zeros(seq_len, seq_len, dtype=dtype)
    return zeros.masked_fill(~causal_mask(seq_len), float("-inf"))


def causal_attention_weights(q: Tensor, k: Tensor) -> Tensor:
    """softmax(q k^T / sqrt(d) + causal mask): q, k (..., L, d) -> (..., L, L)."""
    if q.shape[-2] != k.shape[-2]:
        raise ValueError(f"q and k need the same length, got {q.shape[-2]} and {k.shape[-2]}")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., L, L)
    scores = scores.masked_fill(~causal_mask(q.shape[-2], device=q.device), float("-inf"))
    return torch.softmax(scores, dim=-1)  # the diagonal is never masked: no 0/0


def causal_log_det(weights: Tensor) -> Tensor:
    """log|det| of lower-triangular weights (..., L, L) -> (...,): the sum of log|diagonal|."""
    diag = torch.diagonal(weights, dim1=-2, dim2=-1)  # (..., L)
    return diag.abs().log().sum(dim=-1)


class KVCache:
    """Keys and values of every position seen so far, concatenated along the sequence dim (-2)."""

    def __init__(self) -> None:
        self.k: Tensor | None = None  # (..., T, d)
        self.v: Tensor | None = None  # (..., T, dv)

    def append(self, k: Tensor, v: Tensor) -> None:
        """Add t new positions: k (..., t, d), v (..., t, dv)."""
        if k.shape[-2] != v.shape[-2]:
            raise ValueError(f"k and v must add the same number of positions, got {k.shape[-2]} and {v.shape[-2]}")
        self.k = k if self.k is None else torch.cat([self.k, k], dim=-2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=-2)

    def attend(self, q: Tensor) -> Tensor:
        """q (..., t, d) are the queries of the last t cached positions -> (..., t, dv)."""
        if self.k is None:
            raise ValueError("attend() before any append(): the cache is empty")
        total, t = self.k.shape[-2], q.shape[-2]
        if t > total:
            raise ValueError(f"{t} queries but only {total} cached positions")
        scores = q @ self.k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., t, T)
        rows = torch.arange(total - t, total, device=q.device).unsqueeze(1)  # (t, 1) absolute positions
        cols = torch.arange(total, device=q.device).unsqueeze(0)  # (1, T)
        scores = scores.masked_fill(cols > rows, float("-inf"))
        return torch.softmax(scores, dim=-1) @ self.v  # (..., t, dv)


def incremental_decode(q: Tensor, k: Tensor, v: Tensor, step_sizes: list[int]) -> Tensor:
    """Causal attention of q, k, v (..., L, d|dv) fed through a KVCache ``step_sizes`` positions at a time."""
    length = q.shape[-2]
    if any(s <= 0 for s in step_sizes) or sum(step_sizes) != length:
        raise ValueError(f"step_sizes must be positive and sum to L={length}, got {step_sizes}")
    cache, outs, start = KVCache(), [], 0
    for size in step_sizes:
        stop = start + size
        cache.append(k[..., start:stop, :], v[..., start:stop, :])
        outs.append(cache.attend(q[..., start:stop, :]))  # (..., size, dv)
        start = stop
    return torch.cat(outs, dim=-2)  # (..., L, dv)
