"""Manual softmax with masked_fill and arange comparisons; the KV cache keeps a list of chunks.

The mask is built by comparing two `arange`s (no `tril`), the softmax is written out by hand (subtract
the row max, exponentiate, normalise), the log-determinant reads the diagonal with `einsum`, and the
cache stores the appended chunks in Python lists, concatenating them only when `attend` needs them.
"""

import math

import torch
from torch import Tensor


def causal_mask(seq_len: int, device=None) -> Tensor:
    if seq_len < 0:
        raise ValueError(f"seq_len must be >= 0, got {seq_len}")
    idx = torch.arange(seq_len, device=device)
    return idx.unsqueeze(1) >= idx.unsqueeze(0)


def additive_causal_mask(seq_len: int, dtype: torch.dtype = torch.float32) -> Tensor:
    allowed = causal_mask(seq_len)
    out = torch.zeros(seq_len, seq_len, dtype=dtype)
    return out.masked_fill(~allowed, float("-inf"))


def _masked_softmax(scores: Tensor, allowed: Tensor) -> Tensor:
    scores = scores.masked_fill(~allowed, float("-inf"))
    row_max = scores.amax(dim=-1, keepdim=True)
    e = torch.exp(scores - row_max)
    return e / e.sum(dim=-1, keepdim=True)


def causal_attention_weights(q: Tensor, k: Tensor) -> Tensor:
    if q.shape[-2] != k.shape[-2]:
        raise ValueError("q and k must have the same length")
    d = q.shape[-1]
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d)
    allowed = causal_mask(q.shape[-2], device=q.device)
    return _masked_softmax(scores, allowed).to(q.dtype)


def causal_log_det(weights: Tensor) -> Tensor:
    diag = torch.einsum("...ii->...i", weights)
    return torch.log(torch.abs(diag)).sum(dim=-1)


class KVCache:
    def __init__(self) -> None:
        self._ks: list[Tensor] = []
        self._vs: list[Tensor] = []
        self._n = 0

    def append(self, k: Tensor, v: Tensor) -> None:
        self._ks.append(k)
        self._vs.append(v)
        self._n += k.shape[-2]

    def attend(self, q: Tensor) -> Tensor:
        t = q.shape[-2]
        if self._n == 0:
            raise ValueError("attend before any append")
        if t > self._n:
            raise ValueError(f"{t} queries but only {self._n} cached positions")
        k = torch.cat(self._ks, dim=-2)
        v = torch.cat(self._vs, dim=-2)
        # compact the lists so repeated attends do not re-concatenate
        self._ks, self._vs = [k], [v]
        total = self._n
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        qpos = torch.arange(total - t, total, device=q.device)
        kpos = torch.arange(total, device=q.device)
        allowed = kpos.unsqueeze(0) <= qpos.unsqueeze(1)
        return torch.matmul(_masked_softmax(scores, allowed), v)


def incremental_decode(q: Tensor, k: Tensor, v: Tensor, step_sizes: list[int]) -> Tensor:
    L = q.shape[-2]
    if any(s <= 0 for s in step_sizes):
        raise ValueError("step sizes must be positive")
    if sum(step_sizes) != L or not step_sizes:
        raise ValueError("step sizes must sum to the sequence length")
    cache = KVCache()
    outs = []
    start = 0
    for s in step_sizes:
        cache.append(k[..., start:start + s, :], v[..., start:start + s, :])
        outs.append(cache.attend(q[..., start:start + s, :]))
        start += s
    return torch.cat(outs, dim=-2)
