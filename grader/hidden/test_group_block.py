"""Hidden tests for ``group_block``. Probes run in the sandbox and return raw outputs; every verdict is here.

Randomness is judged statistically, never by exact draws: a probe seeds a ``torch.Generator``, draws many
samples in one call and returns them; the test compares frequencies with their exact probabilities. Every
bound is Bernstein's inequality at a failure probability of 1e-9 per compared frequency (about 6 standard
deviations, and still valid for rare events), so a correct implementation fails with probability < 1e-7
whatever its seed and its way of drawing the noise, and the fixed seed keeps each grade reproducible.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.testing import close, data_seed, float_dtypes, points, seeded_tensor, shapes

LOG_2_OVER_DELTA = math.log(2 / 1e-9)  # Bernstein bounds with failure probability 1e-9 per frequency
LINEARS = ("q_proj", "k_proj", "v_proj", "proj")
LOGISTIC_GRID = torch.tensor([-4.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 4.0], dtype=torch.float64)


# -- probes (executed against the submission, return plain data) ---------------------------------------

def _gen(seed):
    return torch.Generator().manual_seed(data_seed(seed))


def gumbel(m, logits, tau, hard, dim, seed):
    return m.gumbel_softmax(logits, tau, hard, dim, _gen(seed))


def many_hard_samples(m, logits, samples, tau, seed):
    x = logits.repeat(samples, *([1] * logits.dim()))  # (S, *logits.shape): every row drawn independently
    return m.gumbel_softmax(x, tau=tau, hard=True, dim=-1, generator=_gen(seed))


def soft_samples_for_taus(m, logits, taus, seed):
    return [m.gumbel_softmax(logits, tau=tau, hard=False, dim=-1, generator=_gen(seed + i))
            for i, tau in enumerate(taus)]


def hard_sample_jacobian(m, logits, tau, seed):
    x = logits.clone().requires_grad_(True)
    y = m.gumbel_softmax(x, tau=tau, hard=True, dim=-1, generator=_gen(seed))
    if not (isinstance(y, torch.Tensor) and y.requires_grad):
        return y.detach() if isinstance(y, torch.Tensor) else y, None
    columns = []
    for j in range(logits.shape[-1]):  # column j: the gradient of y[..., j] with respect to the logits
        upstream = torch.zeros_like(y)
        upstream[..., j] = 1.0
        (g,) = torch.autograd.grad(y, x, upstream, retain_graph=True, allow_unused=True)
        columns.append(torch.zeros_like(x) if g is None else g)
    return y.detach(), torch.stack(columns, -1)  # (B, n, n): J[b, i, j] = d y[b, j] / d x[b, i]


def hard_softmax_with_grad(m, logits, dim, upstream):
    x = logits.clone().requires_grad_(True)
    y = m.hard_softmax(x, dim)
    if not y.requires_grad:
        return y.detach(), None
    (g,) = torch.autograd.grad(y, x, upstream, allow_unused=True)
    return y.detach(), g


def generator_use(m, logits):
    torch.manual_seed(data_seed(1))
    a = m.gumbel_softmax(logits, 1.0, False, -1, _gen(7))
    torch.manual_seed(data_seed(2))
    b = m.gumbel_softmax(logits, 1.0, False, -1, _gen(7))
    c = m.gumbel_softmax(logits, 1.0, False, -1, _gen(8))
    torch.manual_seed(data_seed(5))
    d = m.gumbel_softmax(logits)
    torch.manual_seed(data_seed(5))
    e = m.gumbel_softmax(logits)
    return a, b, c, d, e


def _weights(module):
    out = {}
    for name in LINEARS:
        layer = getattr(module, name)
        out[name] = [layer.weight.detach().clone(),
                     None if layer.bias is None else layer.bias.detach().clone()]
    return out


def _module(m, dim, kwargs, dtype, train, seed):
    torch.manual_seed(data_seed(seed))
    module = m.AssignAttention(dim, **kwargs).to(dtype)
    module.train(train)
    return module


def assign_forward(m, dim, kwargs, groups, tokens, train, seed):
    module = _module(m, dim, kwargs, groups.dtype, train, seed)
    out, a = module(groups, tokens, generator=_gen(seed + 1))
    return _weights(module), out.detach(), a.detach()


def assign_forward_twice(m, dim, kwargs, groups, tokens, train, seed):
    module = _module(m, dim, kwargs, groups.dtype, train, seed)
    torch.manual_seed(data_seed(11))
    first = module(groups, tokens, generator=_gen(seed + 1))
    torch.manual_seed(data_seed(12))
    second = module(groups, tokens, generator=_gen(seed + 2))
    return _weights(module), [t.detach() for t in first], [t.detach() for t in second]


def assign_backward(m, dim, kwargs, groups, tokens, upstream, train, seed):
    module = _module(m, dim, kwargs, groups.dtype, train, seed)
    g = groups.clone().requires_grad_(True)
    t = tokens.clone().requires_grad_(True)
    out, a = module(g, t, generator=_gen(seed + 1))
    a_requires_grad = bool(a.requires_grad)
    (out * upstream).sum().backward()
    return {"weights": _weights(module), "out": out.detach(), "a": a.detach(), "a_requires_grad": a_requires_grad,
            "groups": g.grad, "tokens": t.grad, "q_weight": module.q_proj.weight.grad}


def submodules(m, dim):
    module = m.AssignAttention(dim)
    info = {}
    for name in LINEARS:
        layer = getattr(module, name, None)
        info[name] = (isinstance(layer, torch.nn.Linear), getattr(layer, "in_features", None),
                      getattr(layer, "out_features", None), getattr(layer, "bias", None) is not None)
    return isinstance(module, torch.nn.Module), info


# -- references and statistics (the test process's own torch) --------------------------------------------

def ref_logits(w, groups, tokens):
    q = F.linear(groups, *w["q_proj"])                                  # (B, G, D)
    k = F.linear(tokens, *w["k_proj"])                                  # (B, N, D)
    return q @ k.transpose(-2, -1) / math.sqrt(groups.shape[-1])       # (B, G, N)


def ref_hard(logits, dim):
    soft = torch.softmax(logits, dim)
    hard = torch.zeros_like(soft).scatter_(dim, soft.argmax(dim, keepdim=True), 1.0)
    return hard - soft.detach() + soft


def ref_assign(logits, hard):
    return ref_hard(logits, 1) if hard else torch.softmax(logits, 1)   # over the GROUP axis


def ref_output(w, a, tokens, eps):
    v = F.linear(tokens, *w["v_proj"])
    return F.linear((a / (a.sum(-1, keepdim=True) + eps)) @ v, *w["proj"])


def ref_module(w, groups, tokens, hard, eps):
    a = ref_assign(ref_logits(w, groups, tokens), hard)
    return ref_output(w, a, tokens, eps), a


def assert_one_hot(y, dim, what):
    assert isinstance(y, torch.Tensor), f"{what} must be a tensor, got {type(y).__name__}"
    rounded = y.detach().round()
    assert ((rounded == 0) | (rounded == 1)).all() and (y - rounded).abs().max() < 1e-5, (
        f"{what} must be one-hot in the forward pass (zeros and a single one), got values like "
        f"{y.flatten()[:8].tolist()}")
    assert (rounded.sum(dim) == 1).all(), f"{what} must have exactly one 1 along dim {dim}"


def frequency_bound(probs, n):
    """Bernstein: for a frequency of n Bernoulli(p) draws, P(|freq - p| > bound) <= 1e-9, for any p."""
    big_l = LOG_2_OVER_DELTA
    return (big_l / 3 + torch.sqrt(big_l ** 2 / 9 + 2 * big_l * n * probs * (1 - probs))) / n


def assert_frequencies(counts, probs, n, what):
    """Each count ~ Binomial(n, p): |count/n - p| <= frequency_bound (a correct sampler passes)."""
    observed = counts / n
    bad = (observed - probs).abs() > frequency_bound(probs, n)
    assert not bad.any(), (
        f"{what}: the observed frequencies are not softmax(logits) (further off than chance allows).\n"
        f"observed  {[[round(v, 4) for v in row] for row in observed.reshape(-1, observed.shape[-1]).tolist()]}\n"
        f"expected  {[[round(v, 4) for v in row] for row in probs.reshape(-1, probs.shape[-1]).tolist()]}")


def assert_logistic(diffs, what):
    """g_i - g_j of two i.i.d. Gumbel(0, 1) draws is Logistic(0, 1): compare the empirical CDF on a grid."""
    diffs = diffs.flatten().double()
    n = diffs.numel()
    cdf = torch.sigmoid(LOGISTIC_GRID)
    empirical = (diffs[:, None] <= LOGISTIC_GRID).double().mean(0)
    bad = (empirical - cdf).abs() > frequency_bound(cdf, n)
    assert not bad.any(), (
        f"{what}: tau * log(sample) - logits must be Gumbel(0, 1) noise plus a constant per row, i.e. "
        f"softmax((logits + g) / tau) with g ~ Gumbel(0, 1). The differences of that noise have the wrong "
        f"distribution: P(g_i - g_j <= x) at x = {LOGISTIC_GRID.tolist()} is "
        f"{[round(v, 3) for v in empirical.tolist()]}, expected {[round(v, 3) for v in cdf.tolist()]}")


def recovered_noise_differences(y, logits, tau, dim):
    """tau * log(y) - logits = g - c: pair disjoint entries along ``dim`` so the differences are independent."""
    z = (tau * torch.log(y.double()) - logits.double()).movedim(dim, -1)
    pairs = z.shape[-1] // 2
    return z[..., 1:2 * pairs:2] - z[..., 0:2 * pairs:2]


def tol(dtype):
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}


# -- gumbel_softmax and hard_softmax -------------------------------------------------------------------

HARD_LOGITS = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0], [-1.0, 3.0, 0.5, 0.5]],
                           dtype=torch.float64)


@points(3)
def test_hard_samples_follow_softmax_of_the_logits(submission):
    samples, tau = 20000, 0.5
    y = submission.run(many_hard_samples, HARD_LOGITS, samples, tau, 0)
    assert tuple(y.shape) == (samples, *HARD_LOGITS.shape), f"gumbel_softmax changed the shape to {tuple(y.shape)}"
    assert_one_hot(y, -1, "gumbel_softmax(..., hard=True)")
    counts = y.round().sum(0)
    assert_frequencies(counts, torch.softmax(HARD_LOGITS, -1), samples,
                       f"{samples} hard samples (tau={tau}) of each row of logits")


@points(2)
def test_soft_samples_are_softmax_of_logits_plus_gumbel_over_tau(submission):
    taus = (0.5, 2.0)
    logits = seeded_tensor((20000, 4), torch.float64, seed=3)
    ys = submission.run(soft_samples_for_taus, logits, taus, 10)
    for tau, y in zip(taus, ys):
        close(y.sum(-1), torch.ones(logits.shape[0], dtype=torch.float64),
              f"soft samples (tau={tau}) summed over dim -1")
        assert (y >= 0).all(), f"soft samples (tau={tau}) must be non-negative"
        assert_logistic(recovered_noise_differences(y, logits, tau, -1), f"soft samples with tau={tau}")


@points(3)
def test_hard_sample_gradient_is_the_soft_samples_gradient(submission):
    tau, n = 0.5, 4
    logits = seeded_tensor((16, n), torch.float64, seed=4)
    y, jac = submission.run(hard_sample_jacobian, logits, tau, 5)
    assert_one_hot(y, -1, "gumbel_softmax(..., hard=True)")
    assert jac is not None, ("the hard sample carries no gradient: use the straight-through trick "
                             "y_hard - y_soft.detach() + y_soft")
    assert jac.abs().max() > 0, "the hard sample's gradient is zero: it must be the soft sample's gradient"
    m = tau * jac                                             # should be diag(s) - s s^T for the soft sample s
    s = torch.empty(logits.shape, dtype=torch.float64)
    for b in range(len(logits)):                              # s_i = M_ii + s_i^2, s_i^2 = -M_ij M_ik / M_jk
        for i in range(n):                                    # (j, k: the best-conditioned pair of other entries)
            j, k = max(itertools.combinations([c for c in range(n) if c != i], 2), key=lambda p: abs(m[b, p[0], p[1]]))
            s[b, i] = m[b, i, i] - m[b, i, j] * m[b, i, k] / m[b, j, k]
    expected = torch.diag_embed(s) - s[:, :, None] * s[:, None, :]
    message = ("the backward pass of a hard sample must be the soft sample's: d softmax((logits + g) / tau) / "
               "d logits = (diag(s) - s s^T) / tau, with s the soft sample whose argmax is the hot entry")
    assert torch.isfinite(s).all() and torch.allclose(m, expected, rtol=1e-6, atol=1e-9), (
        f"{message}; the Jacobian returned has not that form (is 1/tau missing?)")
    assert torch.allclose(s.sum(-1), torch.ones(len(s), dtype=torch.float64), atol=1e-6), (
        f"{message}; the Jacobian times tau fits a 'soft sample' summing to {s.sum(-1)[:4].tolist()}, not 1 "
        "(is 1/tau missing, or applied twice?)")
    assert (s.argmax(-1) == y.argmax(-1)).all(), (
        f"{message}; the gradient is that of a soft sample whose argmax is not the hot entry (gradient of "
        "the noise-free softmax, or of a different noise draw?)")


@points(2)
@settings(max_examples=20)
@given(shape=shapes(1, 3, 1, 5), data=st.data(), dtype=float_dtypes())
def test_hard_softmax_is_one_hot_forward_softmax_backward(submission, shape, data, dtype):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    x = seeded_tensor(shape, dtype, seed=len(shape) + dim, scale=2.0)
    upstream = seeded_tensor(shape, dtype, seed=99)
    y, grad = submission.run(hard_softmax_with_grad, x, dim, upstream)
    xr = x.clone().requires_grad_(True)
    yr = ref_hard(xr, dim)
    close(y, yr.detach(), f"hard_softmax(x, dim={dim}) for shape {shape} (the one-hot of the argmax)")
    assert grad is not None, ("hard_softmax carries no gradient: its backward pass must be softmax's "
                              "(straight-through: y_hard - y_soft.detach() + y_soft)")
    (expected,) = torch.autograd.grad(yr, xr, upstream)
    close(grad, expected, f"the gradient of hard_softmax(x, dim={dim}) (it must be softmax's gradient)",
          **tol(dtype))


@settings(max_examples=20)
@given(shape=shapes(1, 4, 1, 5), data=st.data(), hard=st.booleans(), dtype=float_dtypes())
def test_gumbel_softmax_normalises_along_dim(submission, shape, data, hard, dtype):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    x = seeded_tensor(shape, dtype, seed=len(shape) - dim)
    y = submission.run(gumbel, x, 0.7, hard, dim, 1)
    what = f"gumbel_softmax(x of shape {shape}, hard={hard}, dim={dim})"
    assert isinstance(y, torch.Tensor) and tuple(y.shape) == shape, f"{what} must keep the shape {shape}"
    assert y.dtype == dtype, f"{what} has dtype {y.dtype}, expected {dtype}"
    if hard:
        assert_one_hot(y, dim, what)
    else:
        assert (y >= 0).all(), f"{what} must be non-negative"
        close(y.sum(dim), torch.ones(y.sum(dim).shape, dtype=dtype), f"{what} summed over dim {dim}", **tol(dtype))


def test_noise_comes_from_the_generator(submission):
    a, b, c, d, e = submission.run(generator_use, seeded_tensor((5, 6)))
    close(a, b, "two samples with equally seeded generators (the global seed differed: all the noise must "
                "come from `generator`)")
    assert not torch.allclose(a, c), "samples from differently seeded generators must differ (is there noise?)"
    close(d, e, "two samples with generator=None after the same torch.manual_seed (None means the global RNG)")


# -- AssignAttention -----------------------------------------------------------------------------------

@points(3)
@settings(max_examples=20)
@given(b=st.integers(1, 3), g=st.integers(1, 4), n=st.integers(1, 6), d=st.integers(1, 8),
       tau=st.sampled_from([0.5, 1.0, 2.0]), eps=st.sampled_from([1.0, 0.5, 1e-3]), dtype=float_dtypes())
def test_soft_assignment_in_eval_matches_reference(submission, b, g, n, d, tau, eps, dtype):
    groups = seeded_tensor((b, g, d), dtype, seed=1, scale=2.0)
    tokens = seeded_tensor((b, n, d), dtype, seed=2, scale=2.0)
    kwargs = {"hard": False, "gumbel": True, "tau": tau, "assign_eps": eps}
    w, out, a = submission.run(assign_forward, d, kwargs, groups, tokens, False, 0)
    expected_out, expected_a = ref_module(w, groups, tokens, hard=False, eps=eps)
    what = f"AssignAttention({d}, hard=False, tau={tau}, assign_eps={eps}).eval() with B={b}, G={g}, N={n}"
    close(a, expected_a, f"the assignment A of {what} (softmax of q k^T / sqrt(D) over the GROUP axis, dim 1; "
                         "tau only applies to the Gumbel branch)", **tol(dtype))
    close(out, expected_out, f"the new groups of {what} (proj((A / (A.sum(-1) + assign_eps)) @ v))", **tol(dtype))


@points(2)
def test_hard_assignment_in_eval_is_one_hot_over_groups_with_softmax_gradient(submission):
    d = 6
    groups = seeded_tensor((2, 3, d), torch.float64, seed=5, scale=2.0)
    tokens = seeded_tensor((2, 7, d), torch.float64, seed=6, scale=2.0)
    upstream = seeded_tensor((2, 3, d), torch.float64, seed=7)
    r = submission.run(assign_backward, d, {}, groups, tokens, upstream, False, 3)
    assert_one_hot(r["a"], 1, "the hard assignment of AssignAttention(dim) in eval mode, over the groups (dim 1),")
    gr, tr = groups.clone().requires_grad_(True), tokens.clone().requires_grad_(True)
    w = {k: [p.clone().requires_grad_(True) if p is not None else None for p in v] for k, v in r["weights"].items()}
    expected_out, expected_a = ref_module(w, gr, tr, hard=True, eps=1.0)
    close(r["a"], expected_a.detach(), "the hard assignment in eval mode (one-hot of the argmax over the groups)")
    close(r["out"], expected_out.detach(), "the new groups of AssignAttention(dim) in eval mode (defaults: "
                                           "hard=True, assign_eps=1.0)")
    (expected_out * upstream).sum().backward()
    for key, ref in (("groups", gr.grad), ("tokens", tr.grad), ("q_weight", w["q_proj"][0].grad)):
        assert r[key] is not None, (f"no gradient reached the {key.replace('_', ' ')} through the hard "
                                    "assignment: hard_softmax must pass softmax's gradient (straight-through)")
        close(r[key], ref, f"the gradient with respect to the {key.replace('_', ' ')} through the hard assignment "
                           "(softmax's gradient, straight-through)")


@points(2)
def test_no_noise_in_eval_or_without_gumbel(submission):
    d = 5
    groups = seeded_tensor((2, 3, d), torch.float64, seed=8, scale=2.0)
    tokens = seeded_tensor((2, 6, d), torch.float64, seed=9, scale=2.0)
    for gumbel_on, train in ((True, False), (False, True)):
        for hard in (True, False):
            kwargs = {"hard": hard, "gumbel": gumbel_on, "tau": 0.5, "assign_eps": 0.5}
            w, first, second = submission.run(assign_forward_twice, d, kwargs, groups, tokens, train, 4)
            mode = "eval mode" if not train else "training mode with gumbel=False"
            what = f"AssignAttention(hard={hard}, gumbel={gumbel_on}) in {mode}"
            close(first[1], second[1], f"the assignment of two calls of {what} (no noise: the same result "
                                       "whatever the generator)")
            expected_out, expected_a = ref_module(w, groups, tokens, hard=hard, eps=0.5)
            close(first[1], expected_a.detach(), f"the assignment of {what} (no noise and no tau)")
            close(first[0], expected_out.detach(), f"the new groups of {what}")


GROUPS = seeded_tensor((1, 4, 8), torch.float64, seed=20, scale=3.0)
TOKENS = seeded_tensor((1, 5, 8), torch.float64, seed=21, scale=3.0)


@points(3)
def test_training_hard_assignment_samples_softmax_over_groups(submission):
    batch, tau, eps = 4000, 0.5, 1.0
    groups, tokens = GROUPS.repeat(batch, 1, 1), TOKENS.repeat(batch, 1, 1)
    kwargs = {"hard": True, "gumbel": True, "tau": tau, "assign_eps": eps}
    w, out, a = submission.run(assign_forward, 8, kwargs, groups, tokens, True, 6)
    assert_one_hot(a, 1, "the hard Gumbel assignment in training mode, over the groups (dim 1),")
    probs = torch.softmax(ref_logits(w, GROUPS, TOKENS)[0], 0)  # (G, N): each token's distribution over groups
    assert_frequencies(a.round().sum(0).T, probs.T, batch,
                       f"which group each token is assigned to, over {batch} identical batch elements")
    close(out, ref_output(w, a, tokens, eps), "the new groups from the sampled assignment A "
                                              "(proj((A / (A.sum(-1) + assign_eps)) @ v))")


@points(2)
def test_training_soft_assignment_is_gumbel_softmax_over_groups(submission):
    batch, tau, eps = 4000, 0.5, 0.5
    groups, tokens = GROUPS.repeat(batch, 1, 1), TOKENS.repeat(batch, 1, 1)
    kwargs = {"hard": False, "gumbel": True, "tau": tau, "assign_eps": eps}
    w, out, a = submission.run(assign_forward, 8, kwargs, groups, tokens, True, 7)
    close(a.sum(1), torch.ones(batch, tokens.shape[1], dtype=torch.float64),
          "the soft Gumbel assignment summed over the groups (dim 1)")
    logits = ref_logits(w, groups, tokens)
    assert_logistic(recovered_noise_differences(a, logits, tau, 1),
                    f"the soft Gumbel assignment (tau={tau}) over the groups")
    close(out, ref_output(w, a, tokens, eps), "the new groups from the sampled soft assignment A")


def test_training_hard_assignment_passes_gradients(submission):
    d = 6
    groups = seeded_tensor((2, 3, d), torch.float64, seed=10, scale=2.0)
    tokens = seeded_tensor((2, 7, d), torch.float64, seed=11, scale=2.0)
    upstream = seeded_tensor((2, 3, d), torch.float64, seed=12)
    kwargs = {"hard": True, "gumbel": True, "tau": 1.0, "assign_eps": 1.0}
    r = submission.run(assign_backward, d, kwargs, groups, tokens, upstream, True, 8)
    assert_one_hot(r["a"], 1, "the hard Gumbel assignment in training mode")
    assert r["a_requires_grad"], "the hard Gumbel assignment must stay in the graph (straight-through)"
    for key in ("groups", "q_weight"):
        grad = r[key]
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().max() > 0, (
            f"no gradient reached the {key.replace('_', ' ')} through the hard Gumbel assignment: the one-hot "
            "must carry the soft sample's gradient (straight-through)")


def test_submodules_are_dim_by_dim_linears(submission):
    is_module, info = submission.run(submodules, 5)
    assert is_module, "AssignAttention must be a torch.nn.Module"
    for name, (is_linear, fan_in, fan_out, has_bias) in info.items():
        assert is_linear, f"AssignAttention.{name} must be a torch.nn.Linear"
        assert (fan_in, fan_out) == (5, 5), f"AssignAttention(5).{name} must be Linear(5, 5), got ({fan_in}, {fan_out})"
        assert has_bias, f"AssignAttention.{name} must be torch.nn.Linear(dim, dim), which has a bias"
