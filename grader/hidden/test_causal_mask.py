"""Hidden tests for ``causal_mask``. Probes run in the sandbox and return raw outputs; every verdict is here."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.testing import close, float_dtypes, points, seeded_tensor, shapes

TOL = {torch.float32: {"rtol": 1e-5, "atol": 1e-6}, torch.float64: {"rtol": 1e-9, "atol": 1e-12}}


# -- probes (executed against the submission, return plain data) ---------------------------------------

def bool_mask(m, seq_len):
    return m.causal_mask(seq_len)


def mask_on(m, seq_len, device):
    mask = m.causal_mask(seq_len, device=device)
    return str(mask.device), mask.dtype, tuple(mask.shape)


def additive(m, seq_len, dtype):
    return m.additive_causal_mask(seq_len, dtype) if dtype is not None else m.additive_causal_mask(seq_len)


def weights(m, q, k):
    return m.causal_attention_weights(q, k)


def log_det(m, w):
    return m.causal_log_det(w)


def weights_and_log_det(m, q, k):
    w = m.causal_attention_weights(q, k)
    return w, m.causal_log_det(w)


def cache_session(m, k, v, appends, queries):
    """Append k/v in pieces of ``appends``; after append number a, attend each (a, t) in ``queries``.

    Returns the outputs in order; ``t`` queries are those of the last t positions cached at that moment.
    """
    cache, outs, start = m.KVCache(), [], 0
    for a, size in enumerate(appends):
        cache.append(k[..., start:start + size, :], v[..., start:start + size, :])
        start += size
        for when, t in queries:
            if when == a:
                outs.append(cache.attend(q_of(k, start, t)))
    return outs


def q_of(k, stop, t):
    # queries are derived from the keys in a fixed way, so the test can rebuild them
    return QUERY_SCALE * k[..., stop - t:stop, :].flip(-1)


QUERY_SCALE = 1.5


def attend_empty(m, q):
    return m.KVCache().attend(q)


def attend_too_many(m, k, v, t):
    cache = m.KVCache()
    cache.append(k, v)
    return cache.attend(k[..., :1, :].expand(*k.shape[:-2], t, k.shape[-1]))


def decode(m, q, k, v, step_sizes):
    return m.incremental_decode(q, k, v, step_sizes)


# -- reference (the test process's own torch, float64) --------------------------------------------------

def ref_mask(seq_len):
    return torch.ones(seq_len, seq_len, dtype=torch.bool).tril()


def ref_weights(q, k):
    scores = (q.double() @ k.double().transpose(-2, -1)) / math.sqrt(q.shape[-1])
    return torch.softmax(scores.masked_fill(~ref_mask(q.shape[-2]), float("-inf")), -1)


def ref_attention(q, k, v):
    return (ref_weights(q, k) @ v.double()).to(q.dtype)


# -- masks -----------------------------------------------------------------------------------------------

def test_causal_mask_values(submission):
    for seq_len in (0, 1, 2, 5, 17):
        close(submission.run(bool_mask, seq_len), ref_mask(seq_len),
              f"causal_mask({seq_len}) (bool, True where j <= i, the diagonal included)")


def test_causal_mask_device(submission):
    for device in ("cpu", torch.device("cpu"), "meta"):
        got = submission.run(mask_on, 4, device)
        assert got == ("meta" if device == "meta" else "cpu", torch.bool, (4, 4)), (
            f"causal_mask(4, device={device!r}) must be a (4, 4) bool tensor on that device; got device, dtype, "
            f"shape = {got}")


def test_additive_mask_values_and_dtype(submission):
    for seq_len, dtype in ((4, None), (6, torch.float64), (3, torch.bfloat16), (5, torch.float16)):
        expected = torch.zeros(seq_len, seq_len, dtype=dtype or torch.float32)
        expected = expected.masked_fill(~ref_mask(seq_len), float("-inf"))
        close(submission.run(additive, seq_len, dtype), expected,
              f"additive_causal_mask({seq_len}{'' if dtype is None else f', {dtype}'}) (0 where j <= i, -inf above)")


# -- weights and the full-rank argument -------------------------------------------------------------------

@points(2)
@settings(max_examples=20)
@given(lead=shapes(0, 2, 1, 3), seq_len=st.integers(1, 9), d=st.integers(1, 8), dtype=float_dtypes())
def test_causal_attention_weights_values(submission, lead, seq_len, d, dtype):
    q = seeded_tensor((*lead, seq_len, d), dtype, seed=seq_len + d, scale=2.0)
    k = seeded_tensor((*lead, seq_len, d), dtype, seed=seq_len + d + 1, scale=2.0)
    close(submission.run(weights, q, k), ref_weights(q, k).to(dtype),
          f"causal_attention_weights for q, k of shape {tuple(q.shape)} in {dtype} "
          "(softmax(q k^T / sqrt(d)) over keys j <= i)", **TOL[dtype])


def test_weights_scale_by_inverse_sqrt_d(submission):
    q, k = seeded_tensor((6, 16), seed=1), seeded_tensor((6, 16), seed=2)
    got = submission.run(weights, q, k)
    unscaled = torch.softmax((q @ k.T).masked_fill(~ref_mask(6), float("-inf")), -1)
    assert not torch.allclose(got, unscaled, atol=1e-4), (
        "causal_attention_weights equals softmax(q k^T + mask) without 1/sqrt(d): divide the scores by sqrt(d)")
    close(got, ref_weights(q, k), "causal_attention_weights with d = 16 (scores divided by sqrt(16) = 4)")


def test_weights_stable_for_large_scores(submission):
    q, k = seeded_tensor((2, 7, 4), torch.float32, seed=5, scale=30.0), seeded_tensor((2, 7, 4), torch.float32, 6, 30.0)
    got = submission.run(weights, q, k)
    assert torch.isfinite(got).all(), "causal_attention_weights must stay finite for scores of several hundred"
    close(got, ref_weights(q, k).float(), "causal_attention_weights for large scores", rtol=1e-4, atol=1e-5)


@points(3)
def test_full_rank_for_length_far_above_head_dim(submission):
    # L = 600 positions, head dimension d = 2: q k^T has rank 2, yet the causal weights are lower triangular
    # with a positive diagonal, so log|det| = sum log(diag) is finite. exp of it is far below float64's range.
    q, k = seeded_tensor((2, 600, 2), seed=7), seeded_tensor((2, 600, 2), seed=8)
    w, logdet = submission.run(weights_and_log_det, q, k)
    ref = ref_weights(q, k)
    close(w, ref, "causal_attention_weights for L = 600, d = 2")
    assert torch.equal(w.triu(1), torch.zeros_like(w)), "causal weights must be exactly 0 above the diagonal"
    diag = torch.diagonal(w, dim1=-2, dim2=-1)
    assert (diag > 0).all(), "every diagonal weight must be > 0 (each position always attends to itself)"
    close(w.sum(-1), torch.ones(2, 600, dtype=torch.float64), "the rows of the causal weights summed")
    expected = torch.diagonal(ref, dim1=-2, dim2=-1).log().sum(-1)
    assert isinstance(logdet, torch.Tensor) and torch.isfinite(logdet).all(), (
        f"causal_log_det of 600 x 600 causal weights must be finite (got {logdet}); the product of the diagonal "
        "underflows to 0, so add logs instead of taking the log of a product")
    assert (expected < -745).all(), "internal test error: the determinant should underflow float64"
    close(logdet, expected, "causal_log_det of the L = 600, d = 2 weights (sum of log of the diagonal)",
          rtol=1e-9, atol=1e-6)


@settings(max_examples=15)
@given(lead=shapes(0, 2, 1, 3), seq_len=st.integers(1, 8), dtype=float_dtypes())
def test_log_det_of_lower_triangular_matrices(submission, lead, seq_len, dtype):
    w = seeded_tensor((*lead, seq_len, seq_len), dtype, seed=seq_len + len(lead)).tril()
    w.diagonal(dim1=-2, dim2=-1).add_(0.1)  # never exactly 0; some entries are negative
    expected = w.double().diagonal(dim1=-2, dim2=-1).abs().log().sum(-1).to(dtype)
    close(submission.run(log_det, w), expected,
          f"causal_log_det of lower-triangular matrices {tuple(w.shape)} in {dtype} (log|det| = sum log|diag|, "
          "shape = the leading dims)", rtol=TOL[dtype]["rtol"], atol=1e-5 if dtype == torch.float32 else 1e-10)


# -- KV cache and incremental decoding ----------------------------------------------------------------------

def cache_reference(k, v, appends, queries):
    """What cache_session must return: row r of a t-query attend at length T is full causal attention."""
    outs, total = [], 0
    for a, size in enumerate(appends):
        total += size
        for when, t in queries:
            if when == a:
                q = q_of(k, total, t)
                kk, vv = k[..., :total, :].double(), v[..., :total, :].double()
                scores = q.double() @ kk.transpose(-2, -1) / math.sqrt(k.shape[-1])  # (..., t, T)
                allowed = torch.arange(total).view(1, -1) <= torch.arange(total - t, total).view(-1, 1)
                outs.append((torch.softmax(scores.masked_fill(~allowed, float("-inf")), -1) @ vv).to(k.dtype))
    return outs


def check_cache(submission, k, v, appends, queries, what):
    got = submission.run(cache_session, k, v, appends, queries)
    expected = cache_reference(k, v, appends, queries)
    assert isinstance(got, list) and len(got) == len(expected)
    for (a, t), g, e in zip(queries, got, expected):
        total = sum(appends[:a + 1])
        close(g, e, f"{what}: attend with t = {t} queries after appends {appends[:a + 1]} (cache length {total}, "
                    f"queries at positions {total - t}..{total - 1})", **TOL[k.dtype])


def test_cache_one_token_at_a_time(submission):
    k, v = seeded_tensor((2, 3, 6, 4), seed=1), seeded_tensor((2, 3, 6, 5), seed=2)
    check_cache(submission, k, v, [1] * 6, [(a, 1) for a in range(6)], "KVCache fed one position at a time")


@points(2)
def test_cache_masks_causally_inside_an_appended_chunk(submission):
    k, v = seeded_tensor((2, 9, 4), seed=3), seeded_tensor((2, 9, 3), seed=4)
    check_cache(submission, k, v, [4, 3, 2], [(0, 4), (1, 3), (2, 2)],
                "KVCache: the queries of one chunk must not see the later keys of that same chunk")


@points(2)
def test_cache_attend_with_t_not_the_last_append_size(submission):
    k, v = seeded_tensor((3, 10, 4), torch.float32, seed=5), seeded_tensor((3, 10, 2), torch.float32, seed=6)
    check_cache(submission, k, v, [3, 2, 5], [(0, 1), (0, 3), (1, 4), (1, 1), (1, 5), (2, 2), (2, 10)],
                "KVCache (t need not be the size of the last append)")


def test_cache_errors(submission):
    k, v = seeded_tensor((2, 3, 4), seed=7), seeded_tensor((2, 3, 4), seed=8)
    submission.raises(ValueError, attend_empty, k, msg="KVCache().attend(q) before any append must raise ValueError")
    submission.raises(ValueError, attend_too_many, k, v, 4,
                      msg="attend with t = 4 queries on a cache of 3 positions must raise ValueError")


@points(2)
@settings(max_examples=20)
@given(lead=shapes(0, 2, 1, 3), data=st.data(), d=st.integers(1, 5), dv=st.integers(1, 4), dtype=float_dtypes())
def test_incremental_decode_equals_full_causal_attention(submission, lead, data, d, dv, dtype):
    steps = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=5), label="step_sizes")
    length = sum(steps)
    q = seeded_tensor((*lead, length, d), dtype, seed=length + d, scale=2.0)
    k = seeded_tensor((*lead, length, d), dtype, seed=length + d + 1, scale=2.0)
    v = seeded_tensor((*lead, length, dv), dtype, seed=length + d + 2)
    close(submission.run(decode, q, k, v, steps), ref_attention(q, k, v),
          f"incremental_decode(q {tuple(q.shape)}, ..., step_sizes={steps}) in {dtype} (full causal attention)",
          **TOL[dtype])


def test_value_errors(submission):
    q = seeded_tensor((2, 5, 3), seed=9)
    for steps in ([2, 2], [3, 3], [5, 0], [6, -1], []):
        submission.raises(ValueError, decode, q, q, q, steps,
                          msg=f"incremental_decode with L = 5 and step_sizes={steps} must raise ValueError "
                              "(sizes must be positive and sum to L)")
    submission.raises(ValueError, weights, q, q[:, :4],
                      msg="causal_attention_weights with 5 queries and 4 keys must raise ValueError")
    submission.raises(ValueError, bool_mask, -1, msg="causal_mask(-1) must raise ValueError")
