"""Library softmax and a three-pass chunked attention: attention uses torch.softmax and then zeroes the
rows with no allowed key, chunked_attention sweeps the chunks once for each row's maximum, once for its
normaliser and once more to accumulate the already-normalised weights times v (no rescaling), masks
come from tril/triu, and retrieval ranks with a Python sort on (-score, index).

The memory bound holds because each sweep only ever holds one (..., Lq, chunk) block of scores; the
block's causal mask is ``ones(Lq, c).tril(-start)``. Cosine similarity is ``q.x / (|q| |x|)`` with the
denominator replaced by 1 where it is 0 (the dot product is then 0 too).
"""

import math

import torch
from torch import Tensor


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    if mask is None:
        weights = torch.softmax(scores, dim=-1)
    else:
        allowed = torch.broadcast_to(mask, scores.shape)
        weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
        weights = torch.where(allowed.any(dim=-1, keepdim=True), weights, 0.0)  # NaN rows -> 0
        weights = torch.where(allowed, weights, 0.0)
    return weights @ v, weights


def attention_matrix_bytes(seq_len: int, num_heads: int = 1, batch_size: int = 1,
                           bytes_per_element: int = 2) -> int:
    total = 1
    for factor in (batch_size, num_heads, seq_len, seq_len, bytes_per_element):
        total *= factor
    return total


def sliding_window_mask(seq_len: int, window: int, causal: bool = True) -> Tensor:
    if window < 1:
        raise ValueError("window must be at least 1")
    ones = torch.ones(seq_len, seq_len, dtype=torch.bool)
    if causal:
        return ones.tril() & ones.triu(-(window - 1))
    return ones.tril(window - 1) & ones.triu(-(window - 1))


def _block_scores(qs: Tensor, k: Tensor, start: int, stop: int, causal: bool) -> Tensor:
    s = qs @ k[..., start:stop, :].transpose(-2, -1)
    if causal:
        keep = torch.ones(qs.shape[-2], stop - start, dtype=torch.bool, device=qs.device).tril(-start)
        s = s.masked_fill(~keep, float("-inf"))
    return s


def chunked_attention(q: Tensor, k: Tensor, v: Tensor, chunk_size: int, causal: bool = False) -> Tensor:
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    if causal and q.shape[-2] != k.shape[-2]:
        raise ValueError("causal chunked attention needs as many queries as keys")
    Lk = k.shape[-2]
    qs = q / math.sqrt(q.shape[-1])
    bounds = [(a, min(a + chunk_size, Lk)) for a in range(0, Lk, chunk_size)]

    row_max = None  # pass 1: the maximum score of every row
    for a, b in bounds:
        block_max = _block_scores(qs, k, a, b, causal).amax(dim=-1, keepdim=True)
        row_max = block_max if row_max is None else torch.maximum(row_max, block_max)
    row_max = row_max.nan_to_num(neginf=0.0)

    denom = torch.zeros_like(row_max)  # pass 2: the normaliser
    for a, b in bounds:
        denom += torch.exp(_block_scores(qs, k, a, b, causal) - row_max).sum(dim=-1, keepdim=True)
    denom = torch.where(denom > 0, denom, torch.ones_like(denom))

    out = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)
    for a, b in bounds:  # pass 3: normalised weights times v
        w = torch.exp(_block_scores(qs, k, a, b, causal) - row_max) / denom
        out += w @ v[..., a:b, :]
    return out


def retrieve_top_k(query: Tensor, documents: Tensor, k: int) -> Tensor:
    n = documents.shape[0]
    if not 0 <= k <= n:
        raise ValueError(f"k={k} is outside [0, {n}]")
    lengths = torch.linalg.vector_norm(documents, dim=-1) * torch.linalg.vector_norm(query)
    scores = (documents @ query) / torch.where(lengths == 0, torch.ones_like(lengths), lengths)
    ranked = sorted(range(n), key=lambda i: (-scores[i].item(), i))
    return torch.tensor(ranked[:k], dtype=torch.int64)
