"""What limits the context window, and what can be done about it.

Read README.md first (``dlkata show long_context``). Replace each ``raise NotImplementedError`` with your
code; check with ``dlkata check long_context``. Forbidden: ``scaled_dot_product_attention``,
``torch.nn.attention``, ``torch.nn.MultiheadAttention`` and ``multi_head_attention_forward``.
"""

import math

import torch
from torch import Tensor


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention: returns ``(out, weights)``.

    q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv) with the same leading dims; ``mask`` is None or a bool
    tensor broadcastable to (..., Lq, Lk), True = may attend. weights = softmax(q k^T / sqrt(d)) over the
    allowed keys, shape (..., Lq, Lk), exactly 0 where masked; out = weights @ v, shape (..., Lq, dv).
    A query row with no allowed key gets all-zero weights and a zero output, never NaN. Finite for
    scores of several hundred. Same dtype as q.
    """
    raise NotImplementedError("attention")


def attention_matrix_bytes(seq_len: int, num_heads: int = 1, batch_size: int = 1,
                           bytes_per_element: int = 2) -> int:
    """Bytes needed to store one layer's (batch, heads, L, L) attention matrix, as an exact Python int."""
    raise NotImplementedError("attention_matrix_bytes")


def sliding_window_mask(seq_len: int, window: int, causal: bool = True) -> Tensor:
    """(L, L) bool mask, True = query i may attend to key j.

    causal: i - window < j <= i (the last ``window`` positions, itself included);
    bidirectional: |i - j| < window. ``window < 1`` raises ValueError.
    """
    raise NotImplementedError("sliding_window_mask")


def chunked_attention(q: Tensor, k: Tensor, v: Tensor, chunk_size: int, causal: bool = False) -> Tensor:
    """attention(q, k, v, mask)[0] (mask: key j <= query i if causal, else none), computed one key/value
    chunk of ``chunk_size`` positions at a time with an online softmax (running max and running sum).

    No tensor created along the way (masks included) may have more than
    prod(leading dims) * Lq * max(chunk_size, d, dv) elements: never anything (Lq, Lk)-sized.
    ``causal`` with Lq != Lk, or ``chunk_size < 1``, raises ValueError. Same dtype as q.
    """
    raise NotImplementedError("chunked_attention")


def retrieve_top_k(query: Tensor, documents: Tensor, k: int) -> Tensor:
    """int64 indices, shape (k,), of the documents (n, d) most cosine-similar to query (d,), best first.

    Exactly equal scores: the lower index first. A zero-norm document (or query) scores 0.
    ``k < 0`` or ``k > n`` raises ValueError; k = 0 gives an empty tensor.
    """
    raise NotImplementedError("retrieve_top_k")
