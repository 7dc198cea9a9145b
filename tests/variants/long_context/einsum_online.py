"""Log-domain attention, einsum everywhere and a normalised running output: attention forms its
weights as exp((s - m) - log l) with a guard for rows without any allowed key, chunked_attention keeps
the running output already divided by the running sum (FlashAttention-1 style) instead of an
unnormalised accumulator, and retrieval normalises the documents first.

``attention`` fills disallowed scores with -inf and uses a row maximum replaced by 0 where it is -inf;
rows whose sum l is 0 get weight 0. ``sliding_window_mask`` compares broadcast ``i - j`` offsets.
``chunked_attention`` scales q once; after each chunk ``o = (o * l * exp(m - m') + p @ v) / l'``.
Retrieval ranks with a stable descending sort.
"""

import math

import torch
from torch import Tensor


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    scores = torch.einsum("...qd,...kd->...qk", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask.to(torch.bool), float("-inf"))
    row_max = scores.amax(dim=-1, keepdim=True)
    row_max = torch.where(torch.isinf(row_max), torch.zeros_like(row_max), row_max)
    z = scores - row_max
    log_total = torch.exp(z).sum(dim=-1, keepdim=True).log()  # -inf for a row with no allowed key
    weights = torch.where(torch.isfinite(log_total), torch.exp(z - log_total), torch.zeros_like(z))
    out = torch.einsum("...qk,...kv->...qv", weights, v)
    return out, weights


def attention_matrix_bytes(seq_len: int, num_heads: int = 1, batch_size: int = 1,
                           bytes_per_element: int = 2) -> int:
    return math.prod((int(batch_size), int(num_heads), int(seq_len), int(seq_len), int(bytes_per_element)))


def sliding_window_mask(seq_len: int, window: int, causal: bool = True) -> Tensor:
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    offset = torch.arange(seq_len).unsqueeze(1) - torch.arange(seq_len).unsqueeze(0)  # i - j
    if causal:
        return (offset >= 0) & (offset < window)
    return offset.abs() < window


def chunked_attention(q: Tensor, k: Tensor, v: Tensor, chunk_size: int, causal: bool = False) -> Tensor:
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    Lq, Lk = q.shape[-2], k.shape[-2]
    if causal and Lq != Lk:
        raise ValueError(f"causal attention needs Lq == Lk, got {Lq} and {Lk}")
    qs = q * (1.0 / math.sqrt(q.shape[-1]))
    lead = q.shape[:-2]
    m = torch.full((*lead, Lq, 1), float("-inf"), dtype=q.dtype, device=q.device)
    l = torch.zeros((*lead, Lq, 1), dtype=q.dtype, device=q.device)
    o = torch.zeros((*lead, Lq, v.shape[-1]), dtype=q.dtype, device=q.device)
    rows = torch.arange(Lq, device=q.device).unsqueeze(1)
    for start in range(0, Lk, chunk_size):
        kc, vc = k[..., start:start + chunk_size, :], v[..., start:start + chunk_size, :]
        s = torch.einsum("...qd,...kd->...qk", qs, kc)
        if causal:
            cols = torch.arange(start, start + kc.shape[-2], device=q.device).unsqueeze(0)
            s = s.masked_fill(cols > rows, float("-inf"))
        m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
        safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
        scale = torch.exp(m - safe)
        p = torch.exp(s - safe)
        kept = l * scale
        l_new = kept + p.sum(dim=-1, keepdim=True)
        safe_l = torch.where(l_new == 0, torch.ones_like(l_new), l_new)
        o = (o * kept + torch.einsum("...qk,...kv->...qv", p, vc)) / safe_l
        l, m = l_new, m_new
    return o


def retrieve_top_k(query: Tensor, documents: Tensor, k: int) -> Tensor:
    n = documents.shape[0]
    if k < 0 or k > n:
        raise ValueError(f"k must be in [0, {n}], got {k}")
    norms = documents.norm(dim=1, keepdim=True)
    unit_docs = torch.where(norms > 0, documents / torch.where(norms > 0, norms, torch.ones_like(norms)),
                            torch.zeros_like(documents))
    qn = query.norm()
    unit_q = query / qn if qn > 0 else torch.zeros_like(query)
    scores = unit_docs @ unit_q
    order = torch.sort(scores, descending=True, stable=True).indices
    return order[:k].to(torch.int64)
