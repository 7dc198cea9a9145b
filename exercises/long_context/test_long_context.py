"""Public tests for ``long_context``: run ``dlkata check long_context`` (or ``pytest`` on this file).

The hidden tests check much more (every shape and dtype, broadcast masks, the memory bound on several
shapes, ties in retrieval); these are the quick feedback loop.
"""

import math

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from grader.testing import close, seeded_tensor


def run_attention(m, q, k, v, mask):
    return m.attention(q, k, v, mask)


def window(m, seq_len, size, causal):
    return m.sliding_window_mask(seq_len, size, causal)


class LargestOutput(TorchDispatchMode):
    """The largest tensor any aten op produces while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        self.numel = max([self.numel, *(t.numel() for t in tree_leaves(result) if isinstance(t, torch.Tensor))])
        return result


def chunked_watched(m, q, k, v, chunk_size, causal):
    watch = LargestOutput()
    with watch:
        out = m.chunked_attention(q, k, v, chunk_size, causal)
    return out, watch.numel


def top_k(m, query, documents, k):
    return m.retrieve_top_k(query, documents, k)


def reference(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, -1).nan_to_num(0.0)
    return weights @ v, weights


def test_attention_with_a_fully_masked_row(submission):
    q, k, v = seeded_tensor((3, 4), seed=1), seeded_tensor((4, 4), seed=2), seeded_tensor((4, 2), seed=3)
    mask = torch.tensor([[True, False, True, True], [False] * 4, [True, True, False, False]])
    out, weights = submission.run(run_attention, q, k, v, mask)
    ref_out, ref_w = reference(q, k, v, mask)
    close(weights, ref_w, "attention weights (row 1 is fully masked: all zeros, not NaN)")
    close(out, ref_out, "attention output (row 1 is fully masked: zeros, not NaN)")


def test_sliding_window_on_a_small_example(submission):
    expected = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=torch.bool)
    close(submission.run(window, 4, 2, True), expected, "sliding_window_mask(4, 2, causal=True)")
    close(submission.run(window, 4, 2, False), expected | expected.T, "sliding_window_mask(4, 2, causal=False)")


def test_chunked_matches_attention_and_stays_small(submission):
    q, k, v = (seeded_tensor((2, 128, 4), torch.float32, seed=s) for s in (4, 5, 6))
    causal = torch.ones(128, 128, dtype=torch.bool).tril()
    for is_causal in (False, True):
        out, largest = submission.run(chunked_watched, q, k, v, 16, is_causal)
        close(out, reference(q, k, v, causal if is_causal else None)[0],
              f"chunked_attention(..., chunk_size=16, causal={is_causal})", rtol=1e-4, atol=1e-5)
        assert largest <= 2 * 128 * 16, (
            f"chunked_attention(causal={is_causal}) created a tensor of {largest} elements; the bound is "
            f"prod(leading) * Lq * max(chunk_size, d, dv) = {2 * 128 * 16}")


def test_top_k_prefers_direction_and_breaks_ties_by_index(submission):
    docs = torch.tensor([[0.0, 1.0], [10.0, 0.0], [0.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    got = submission.run(top_k, torch.tensor([1.0, 0.0]), docs, 4)
    close(got, torch.tensor([1, 3, 0, 2]), "retrieve_top_k: cos 1, 1 (tie: lower index first), 0, 0")
