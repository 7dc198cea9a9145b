"""chunked attention builds the full (Lq, Lk) causal mask once and slices it per chunk.

What limits the context window: attention's (L, L) matrix, and four ways around it.

Scaled dot-product attention of queries q (..., Lq, d) over keys k (..., Lk, d) and values v (..., Lk, dv):

    S = q k^T / sqrt(d)                      (..., Lq, Lk)   scores; 1/sqrt(d) keeps their variance ~1
    P = softmax(S masked to -inf)            (..., Lq, Lk)   each row sums to 1 (or is all 0: nothing allowed)
    out = P v                                (..., Lq, dv)

S and P hold batch * heads * L^2 numbers: ``attention_matrix_bytes``. At L = 128k, 32 heads, bf16 that
is 2^40 bytes (1 TiB) for one layer, so the matrix, not the weights, is what limits the context window.

* ``sliding_window_mask``: attend to the last ``window`` positions only (Mistral, Longformer): O(L w).
* ``chunked_attention``: the flash-attention idea. Keys and values are visited one chunk at a time and
  the softmax is computed online. For each query row keep a running max m, running sum l and an
  unnormalised accumulator acc; for a chunk with scores s (..., Lq, c):

      m'  = max(m, max_j s_j)
      l'  = l * exp(m - m') + sum_j exp(s_j - m')
      acc'= acc * exp(m - m') + exp(s - m') v_chunk
      out = acc / l          after the last chunk

  Rescaling by exp(m - m') is what makes the partial sums from different chunks comparable. Nothing
  larger than (..., Lq, max(c, d, dv)) is ever stored, and the result is exact (not an approximation).
* ``retrieve_top_k``: retrieval-augmented generation keeps the context short by fetching only the k
  documents most similar to the query: cosine(q, x) = q.x / (|q| |x|).
"""

import math

import torch
from torch import Tensor


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Masked scaled dot-product attention; returns (out (..., Lq, dv), weights (..., Lq, Lk)).

    ``mask`` is bool, broadcastable to (..., Lq, Lk), True = may attend. A query row with no allowed key
    gets all-zero weights and a zero output (never NaN).
    """
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (..., Lq, Lk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = _safe_softmax(scores)  # (..., Lq, Lk)
    return weights @ v, weights  # (..., Lq, dv), (..., Lq, Lk)


def _safe_softmax(scores: Tensor) -> Tensor:
    """Softmax over the last dim where a row of only -inf gives zeros instead of 0/0 = NaN."""
    row_max = scores.amax(dim=-1, keepdim=True)  # (..., Lq, 1); -inf for a fully masked row
    row_max = torch.where(torch.isinf(row_max), torch.zeros_like(row_max), row_max)
    e = torch.exp(scores - row_max)  # masked entries: exp(-inf) = 0
    total = e.sum(dim=-1, keepdim=True)  # (..., Lq, 1)
    return e / torch.where(total > 0, total, torch.ones_like(total))


def attention_matrix_bytes(seq_len: int, num_heads: int = 1, batch_size: int = 1,
                           bytes_per_element: int = 2) -> int:
    """Bytes of one layer's attention matrix: batch * heads * L * L elements (exact int)."""
    return batch_size * num_heads * seq_len * seq_len * bytes_per_element


def sliding_window_mask(seq_len: int, window: int, causal: bool = True) -> Tensor:
    """(L, L) bool. causal: i - window < j <= i; bidirectional: |i - j| < window. window >= 1."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    i = torch.arange(seq_len).unsqueeze(1)  # (L, 1) query position
    j = torch.arange(seq_len).unsqueeze(0)  # (1, L) key position
    if causal:
        return (j <= i) & (j > i - window)
    return (i - j).abs() < window


def chunked_attention(q: Tensor, k: Tensor, v: Tensor, chunk_size: int, causal: bool = False) -> Tensor:
    """attention(q, k, v, mask)[0] computed over key/value chunks with an online softmax.

    Never stores more than prod(leading) * Lq * max(chunk_size, d, dv) elements at once.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    lq, lk = q.shape[-2], k.shape[-2]
    if causal and lq != lk:
        raise ValueError(f"causal attention needs Lq == Lk, got Lq={lq}, Lk={lk}")
    scale = 1.0 / math.sqrt(q.shape[-1])
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    opts = {"dtype": q.dtype, "device": q.device}
    run_max = torch.full((*lead, lq, 1), float("-inf"), **opts)  # (..., Lq, 1)
    run_sum = torch.zeros((*lead, lq, 1), **opts)  # (..., Lq, 1)
    acc = torch.zeros((*lead, lq, v.shape[-1]), **opts)  # (..., Lq, dv)
    full_mask = torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril()  # (Lq, Lk)
    for start in range(0, lk, chunk_size):
        stop = min(start + chunk_size, lk)
        s = (q @ k[..., start:stop, :].transpose(-2, -1)) * scale  # (..., Lq, c)
        if causal:
            s = s.masked_fill(~full_mask[:, start:stop], float("-inf"))  # mask (Lq, c)
        new_max = torch.maximum(run_max, s.amax(dim=-1, keepdim=True))  # finite: chunk 0 has key 0
        rescale = torch.exp(run_max - new_max)  # (..., Lq, 1); 0 on the first chunk
        p = torch.exp(s - new_max)  # (..., Lq, c)
        run_sum = run_sum * rescale + p.sum(dim=-1, keepdim=True)
        acc = acc * rescale + p @ v[..., start:stop, :]  # (..., Lq, dv)
        run_max = new_max
    return acc / run_sum


def retrieve_top_k(query: Tensor, documents: Tensor, k: int) -> Tensor:
    """int64 indices (k,) of the documents (n, d) most cosine-similar to query (d,), best first.

    Exactly equal scores go to the lower index; a zero-norm document or query scores 0.
    """
    n = documents.shape[0]
    if k < 0 or k > n:
        raise ValueError(f"k must be in [0, {n}], got {k}")
    denom = documents.norm(dim=-1) * query.norm()  # (n,)
    dots = documents @ query  # (n,)
    scores = torch.where(denom > 0, dots / torch.where(denom > 0, denom, torch.ones_like(denom)),
                         torch.zeros_like(dots))  # (n,)
    order = torch.sort(scores, descending=True, stable=True).indices  # ties keep index order
    return order[:k].to(torch.int64)
