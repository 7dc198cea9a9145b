"""Public tests for ``causal_mask``: run ``dlkata check causal_mask`` (or ``pytest`` on this file).

The hidden tests check much more (every shape and dtype, the device argument, L = 600 for the log-det,
KV-cache queries that are not the last append, every ValueError); these are the quick feedback loop.
"""

import math

import torch

from grader.testing import close, seeded_tensor


def masks(m, seq_len):
    return m.causal_mask(seq_len), m.additive_causal_mask(seq_len)


def weights_and_log_det(m, q, k):
    w = m.causal_attention_weights(q, k)
    return w, m.causal_log_det(w)


def chunked_cache(m, q, k, v):
    cache = m.KVCache()
    cache.append(k[:3], v[:3])
    first = cache.attend(q[:3])  # three queries of one appended chunk
    cache.append(k[3:], v[3:])
    return first, cache.attend(q[3:])


def decode(m, q, k, v, step_sizes):
    return m.incremental_decode(q, k, v, step_sizes)


def reference(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    allowed = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
    w = torch.softmax(scores.masked_fill(~allowed, float("-inf")), -1)
    return w @ v, w


def test_masks_on_three_positions(submission):
    mask, add = submission.run(masks, 3)
    expected = torch.tensor([[True, False, False], [True, True, False], [True, True, True]])
    close(mask, expected, "causal_mask(3)")
    inf = float("inf")
    close(add, torch.tensor([[0.0, -inf, -inf], [0.0, 0.0, -inf], [0.0, 0.0, 0.0]]), "additive_causal_mask(3)")


def test_weights_and_log_det(submission):
    q, k = seeded_tensor((50, 2), seed=1), seeded_tensor((50, 2), seed=2)
    w, logdet = submission.run(weights_and_log_det, q, k)
    ref_w = reference(q, k, k)[1]
    close(w, ref_w, "causal_attention_weights for L = 50, d = 2")
    close(logdet, torch.diagonal(ref_w).log().sum(), "causal_log_det (sum of the log of the diagonal)")


def test_cache_masks_inside_a_chunk(submission):
    q, k, v = (seeded_tensor((5, 4), seed=s) for s in (3, 4, 5))
    first, second = submission.run(chunked_cache, q, k, v)
    full = reference(q, k, v)[0]
    close(first, full[:3], "KVCache.attend of the first 3 positions (query 0 must not see keys 1 and 2)")
    close(second, full[3:], "KVCache.attend of positions 3 and 4")


def test_incremental_decode_equals_full_attention(submission):
    q, k, v = (seeded_tensor((2, 7, 3), seed=s) for s in (6, 7, 8))
    close(submission.run(decode, q, k, v, [3, 1, 3]), reference(q, k, v)[0], "incremental_decode(..., [3, 1, 3])")
    submission.raises(ValueError, decode, q, k, v, [3, 3], msg="step_sizes summing to 6 != L = 7 must raise ValueError")
