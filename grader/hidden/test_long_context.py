"""Hidden tests for ``long_context``. Probes run in the sandbox and return raw outputs; every verdict is here."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from grader.testing import close, data_seed, float_dtypes, points, seeded_tensor, shapes

TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-5}, torch.float64: {"rtol": 1e-9, "atol": 1e-10}}


# -- probes (executed against the submission, return plain data) ---------------------------------------

def run_attention(m, q, k, v, mask):
    out, weights = m.attention(q, k, v, mask)
    return out, weights


def window_mask(m, seq_len, window, causal):
    return m.sliding_window_mask(seq_len, window, causal)


def window_mask_default(m, seq_len, window):
    return m.sliding_window_mask(seq_len, window)


def matrix_bytes(m, args, kwargs):
    return m.attention_matrix_bytes(*args, **kwargs)


def run_chunked(m, q, k, v, chunk_size, causal):
    return m.chunked_attention(q, k, v, chunk_size, causal)


def run_chunked_default(m, q, k, v, chunk_size):
    return m.chunked_attention(q, k, v, chunk_size)


class LargestOutput(TorchDispatchMode):
    """Records the numel of every tensor any aten op produces (views, masks and scalars included)."""

    def __init__(self) -> None:
        super().__init__()
        self.numel = 0
        self.where = "nothing"

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for t in tree_leaves(result):
            if isinstance(t, torch.Tensor) and t.numel() > self.numel:
                self.numel, self.where = t.numel(), f"{func} -> shape {tuple(t.shape)}"
        return result


def chunked_under_watch(m, q, k, v, chunk_size, causal):
    watch = LargestOutput()
    with watch:
        out = m.chunked_attention(q, k, v, chunk_size, causal)
    return out, watch.numel, watch.where


def top_k(m, query, documents, k):
    return m.retrieve_top_k(query, documents, k)


# -- reference (the test process's own torch, float64) --------------------------------------------------

def ref_attention(q, k, v, mask=None):
    scores = (q.double() @ k.double().transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, -1).nan_to_num(0.0)
    return (weights @ v.double()).to(q.dtype), weights.to(q.dtype)


def ref_window(seq_len, window, causal):
    i = torch.arange(seq_len).view(-1, 1)
    j = torch.arange(seq_len).view(1, -1)
    if causal:
        return (i - window < j) & (j <= i)
    return (i - j).abs() < window


def ref_causal(seq_len):
    return torch.ones(seq_len, seq_len, dtype=torch.bool).tril()


def ref_cosine(query, documents):
    q, d = query.double(), documents.double()
    denom = d.norm(dim=-1) * q.norm()
    return torch.where(denom > 0, (d @ q) / denom.clamp_min(1e-300), torch.zeros_like(denom))


def qkv(lead, lq, lk, d, dv, dtype, seed, scale=1.0):
    return (seeded_tensor((*lead, lq, d), dtype, seed, scale), seeded_tensor((*lead, lk, d), dtype, seed + 1, scale),
            seeded_tensor((*lead, lk, dv), dtype, seed + 2))


# -- attention ---------------------------------------------------------------------------------------------

@points(2)
@settings(max_examples=20)
@given(lead=shapes(0, 2, 1, 3), lq=st.integers(1, 6), lk=st.integers(1, 7), d=st.integers(1, 9),
       dv=st.integers(1, 5), dtype=float_dtypes())
def test_attention_values_unmasked(submission, lead, lq, lk, d, dv, dtype):
    q, k, v = qkv(lead, lq, lk, d, dv, dtype, seed=lq + 7 * lk + d)
    out, weights = submission.run(run_attention, q, k, v, None)
    ref_out, ref_w = ref_attention(q, k, v)
    what = f"for q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, {dtype}"
    close(weights, ref_w, f"attention weights {what}", **TOL[dtype])
    close(out, ref_out, f"attention output {what}", **TOL[dtype])


def test_attention_scales_scores_by_inverse_sqrt_d(submission):
    q, k, v = qkv((2,), 4, 5, 16, 3, torch.float64, seed=3)
    _, weights = submission.run(run_attention, q, k, v, None)
    unscaled = torch.softmax(q @ k.transpose(-2, -1), -1)
    assert not torch.allclose(weights, unscaled, atol=1e-4), (
        "attention weights equal softmax(q k^T) without the 1/sqrt(d) factor: divide the scores by sqrt(d)")
    close(weights, ref_attention(q, k, v)[1], "attention weights softmax(q k^T / sqrt(d)) with d = 16")


@points(2)
def test_attention_mask_broadcasts_and_blocks(submission):
    q, k, v = qkv((2, 3), 5, 6, 4, 3, torch.float64, seed=11)
    g = torch.Generator().manual_seed(data_seed(5))
    full = torch.rand(2, 3, 5, 6, generator=g) < 0.6
    full[..., 0] = True  # every row keeps at least one key here
    for mask in (full, full[0, :1], full[:, :1], ref_causal(6)[:5], torch.tensor(True)):
        out, weights = submission.run(run_attention, q, k, v, mask)
        ref_out, ref_w = ref_attention(q, k, v, mask)
        what = f"with a mask of shape {tuple(mask.shape)}"
        close(weights, ref_w, f"attention weights {what} (masked entries must be exactly 0)")
        close(out, ref_out, f"attention output {what}")


@points(2)
def test_fully_masked_rows_give_zeros_not_nan(submission):
    q, k, v = qkv((2,), 4, 5, 3, 2, torch.float32, seed=21)
    mask = torch.ones(2, 4, 5, dtype=torch.bool)
    mask[0, 1] = False  # query 1 of batch 0 may attend to nothing
    mask[1, 3] = False
    mask[1, 0, 2:] = False
    out, weights = submission.run(run_attention, q, k, v, mask)
    assert not torch.isnan(weights).any() and not torch.isnan(out).any(), (
        "a query row whose mask is all False must give zero weights and a zero output, not NaN "
        "(softmax of a row of -inf is 0/0)")
    ref_out, ref_w = ref_attention(q, k, v, mask)
    close(weights, ref_w, "attention weights with fully masked rows (those rows must be all 0)")
    close(out, ref_out, "attention output with fully masked rows (those rows must be all 0)")


def test_attention_is_stable_for_large_scores(submission):
    q, k, v = qkv((), 3, 8, 4, 2, torch.float32, seed=2, scale=40.0)  # scores of several hundred
    out, weights = submission.run(run_attention, q, k, v, None)
    assert torch.isfinite(weights).all() and torch.isfinite(out).all(), (
        "attention must stay finite for scores of several hundred: subtract each row's max before exp")
    ref_out, ref_w = ref_attention(q, k, v)
    close(weights, ref_w, "attention weights for large scores", rtol=1e-4, atol=1e-5)
    close(out, ref_out, "attention output for large scores", rtol=1e-4, atol=1e-5)


# -- memory arithmetic and sliding windows ------------------------------------------------------------------

def test_attention_matrix_bytes_is_exact_int(submission):
    cases = [((1024,), {}, 1024 * 1024 * 2), ((131072,), {"num_heads": 32}, 2**40),
             ((4096, 16, 8, 4), {}, 4096**2 * 16 * 8 * 4),
             ((10**6,), {"num_heads": 64, "batch_size": 3, "bytes_per_element": 4}, 10**12 * 64 * 3 * 4),
             ((1,), {}, 2), ((0,), {}, 0)]
    for args, kwargs, expected in cases:
        got = submission.run(matrix_bytes, args, kwargs)
        call = ", ".join([*map(str, args), *(f"{k}={v}" for k, v in kwargs.items())])
        assert type(got) is int, f"attention_matrix_bytes({call}) must return an int, got {type(got).__name__}"
        assert got == expected, f"attention_matrix_bytes({call}) = {got}, expected {expected} (batch*heads*L*L*bytes)"


@points(2)
@given(seq_len=st.integers(0, 12), window=st.integers(1, 14), causal=st.booleans())
def test_sliding_window_mask(submission, seq_len, window, causal):
    got = submission.run(window_mask, seq_len, window, causal)
    rule = "i - window < j <= i" if causal else "|i - j| < window"
    what = f"sliding_window_mask({seq_len}, window={window}, causal={causal}) (True where {rule})"
    close(got, ref_window(seq_len, window, causal), what)


def test_sliding_window_defaults_and_bad_window(submission):
    close(submission.run(window_mask_default, 6, 2), ref_window(6, 2, True),
          "sliding_window_mask(6, 2) (causal by default)")
    for window in (0, -3):
        submission.raises(ValueError, window_mask, 5, window, True,
                          msg=f"sliding_window_mask(5, window={window}) must raise ValueError (window >= 1)")


# -- chunked attention ---------------------------------------------------------------------------------------

@points(3)
@settings(max_examples=20)
@given(lead=shapes(0, 2, 1, 3), lq=st.integers(1, 9), lk=st.integers(1, 11), d=st.integers(1, 6),
       dv=st.integers(1, 5), chunk=st.integers(1, 12), causal=st.booleans(), dtype=float_dtypes())
def test_chunked_equals_attention(submission, lead, lq, lk, d, dv, chunk, causal, dtype):
    if causal:
        lk = lq
    q, k, v = qkv(lead, lq, lk, d, dv, dtype, seed=lq * 13 + lk + chunk, scale=3.0)
    got = submission.run(run_chunked, q, k, v, chunk, causal)
    ref = ref_attention(q, k, v, ref_causal(lq) if causal else None)[0]
    close(got, ref, f"chunked_attention(q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, "
                    f"chunk_size={chunk}, causal={causal}) in {dtype}", **TOL[dtype])


def test_chunked_is_stable_for_large_scores_and_defaults_to_non_causal(submission):
    q, k, v = qkv((2,), 7, 20, 4, 3, torch.float32, seed=8, scale=40.0)  # scores of several hundred
    got = submission.run(run_chunked_default, q, k, v, 3)
    assert torch.isfinite(got).all(), (
        "chunked_attention must stay finite for scores of several hundred: keep a running max per row")
    close(got, ref_attention(q, k, v)[0], "chunked_attention(q, k, v, 3) for large scores (non-causal default)",
          rtol=1e-4, atol=1e-5)


@points(3)
def test_chunked_never_materialises_the_attention_matrix(submission):
    # Lq = Lk = 384 is far larger than max(chunk_size, d, dv): an (Lq, Lk) tensor (scores, weights or a
    # causal mask) would be 3 to 24 times over the bound. Views of the whole of k or v are within it.
    for lead, chunk, d, dv, causal in (((2, 2), 32, 8, 8, False), ((2, 2), 32, 8, 8, True),
                                       ((), 16, 8, 4, True), ((3,), 8, 16, 4, False)):
        q, k, v = qkv(lead, 384, 384, d, dv, torch.float32, seed=chunk + d)
        out, largest, where = submission.run(chunked_under_watch, q, k, v, chunk, causal)
        bound = math.prod(lead) * 384 * max(chunk, d, dv)
        call = (f"chunked_attention(q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, "
                f"chunk_size={chunk}, causal={causal})")
        assert largest <= bound, (
            f"{call} created a tensor of {largest} elements ({where}); at most prod(leading) * Lq * "
            f"max(chunk_size, d, dv) = {bound} are allowed. Work on one key/value chunk at a time and "
            "never build anything (Lq, Lk)-sized, masks included")
        close(out, ref_attention(q, k, v, ref_causal(384) if causal else None)[0], call, rtol=1e-4, atol=1e-5)


def test_chunked_rejects_bad_arguments(submission):
    q, k, v = qkv((), 4, 6, 3, 2, torch.float64, seed=1)
    submission.raises(ValueError, run_chunked, q, k, v, 2, True,
                      msg="chunked_attention(causal=True) with Lq=4 != Lk=6 must raise ValueError")
    for chunk in (0, -1):
        submission.raises(ValueError, run_chunked, q, k, v, chunk, False,
                          msg=f"chunked_attention(chunk_size={chunk}) must raise ValueError (chunk_size >= 1)")


# -- retrieval ------------------------------------------------------------------------------------------------

@points(2)
@settings(max_examples=20)
@given(n=st.integers(1, 30), d=st.integers(2, 8), data=st.data(), dtype=float_dtypes())
def test_top_k_matches_cosine_ranking(submission, n, d, data, dtype):
    k = data.draw(st.integers(0, n), label="k")
    query = seeded_tensor((d,), dtype, seed=n)
    docs = seeded_tensor((n, d), dtype, seed=n + 100) * torch.linspace(0.1, 10.0, n, dtype=dtype).unsqueeze(1)
    scores = ref_cosine(query, docs)
    expected = torch.sort(scores, descending=True, stable=True).indices[:k]
    got = submission.run(top_k, query, docs, k)
    what = f"retrieve_top_k(query, documents ({n}, {d}), k={k}) in {dtype}"
    assert isinstance(got, torch.Tensor) and got.dtype == torch.int64 and tuple(got.shape) == (k,), (
        f"{what} must return an int64 tensor of shape ({k},), got {got!r}")
    assert len(set(got.tolist())) == k and all(0 <= i < n for i in got.tolist()), (
        f"{what} must return {k} distinct document indices, got {got.tolist()}")
    # compared through the scores, so two documents whose cosines differ by rounding only may swap
    close(scores[got], scores[expected], f"{what}: the cosine similarities of the returned documents, best "
          f"first (expected indices {expected.tolist()}, got {got.tolist()}; a document's norm must not matter)",
          rtol=0, atol=1e-6)


@points(2)
def test_top_k_ties_and_zero_norms(submission):
    # every score here is exact in binary, so equal scores are exactly equal however they are computed
    docs = torch.tensor([[0.0, 0.0, 0.0, 0.0],    # 0: zero norm -> 0
                         [1.0, 1.0, 1.0, 1.0],    # 1: cos 0.5
                         [-1.0, 0.0, 0.0, 0.0],   # 2: cos -1
                         [2.0, 0.0, 0.0, 0.0],    # 3: cos 1
                         [1.0, 1.0, -1.0, 1.0],   # 4: cos 0.5 (tie with 1)
                         [0.0, 0.0, 3.0, 0.0],    # 5: cos 0 (tie with the zero document)
                         [4.0, 0.0, 0.0, 0.0],    # 6: cos 1 (tie with 3)
                         [1.0, 1.0, 1.0, 1.0]])   # 7: cos 0.5 (duplicate of 1)
    query = torch.tensor([1.0, 0.0, 0.0, 0.0])
    expected = [3, 6, 1, 4, 7, 0, 5, 2]
    for dtype in (torch.float32, torch.float64):
        got = submission.run(top_k, query.to(dtype), docs.to(dtype), 8)
        close(got, torch.tensor(expected), f"retrieve_top_k(query, documents, 8) in {dtype} [tied scores: the "
              "lower index first; a zero-norm document scores 0]")
    got = submission.run(top_k, query, docs, 3)
    close(got, torch.tensor(expected[:3]), "retrieve_top_k(..., k=3) with ties")
    got = submission.run(top_k, torch.zeros(4), docs, 5)
    close(got, torch.arange(5), "retrieve_top_k with a zero query (every score is 0, so index order)")


def test_top_k_edges_and_bad_k(submission):
    docs = seeded_tensor((5, 3), torch.float32, seed=4)
    query = seeded_tensor((3,), torch.float32, seed=5)
    got = submission.run(top_k, query, docs, 0)
    close(got, torch.zeros(0, dtype=torch.int64), "retrieve_top_k(..., k=0) (an empty int64 tensor)")
    got = submission.run(top_k, query, docs, 5)
    close(got, torch.sort(ref_cosine(query, docs), descending=True, stable=True).indices,
          "retrieve_top_k(..., k=n) (every document, best first)")
    for k in (-1, 6):
        submission.raises(ValueError, top_k, query, docs, k,
                          msg=f"retrieve_top_k with k={k} and n=5 documents must raise ValueError")
