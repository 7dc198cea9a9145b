"""Hidden tests for ``normalization``. Probes run in the sandbox and return raw outputs; every verdict is
here. torch.nn.BatchNorm1d / torch.nn.LayerNorm, run in this process on the same inputs, are the oracle."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.testing import close, float_dtypes, points, seeded_tensor, shapes

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-7, atol=1e-7)}


# -- helpers shared by probes (sandbox) and references (this process) --------------------------------

def _set_params(layer, params):
    named = dict(layer.named_parameters())
    with torch.no_grad():
        for name, value in params.items():
            if name in named:
                named[name].copy_(value)


def _script(layer, params, steps):
    """Run ``steps`` [(x, train)] through ``layer``: each output and a copy of the buffers after it."""
    _set_params(layer, params)
    out = []
    for x, train in steps:
        layer.train(train)
        y = layer(x)
        out.append((y, {name: b.clone() for name, b in layer.named_buffers()}))
    return out


def _layout(layer):
    """Parameter names, and state_dict entries as name -> (shape, dtype, values)."""
    params = sorted(name for name, _ in layer.named_parameters())
    state = {k: (tuple(v.shape), v.dtype, v.clone()) for k, v in layer.state_dict().items()}
    return params, state


def _grads(layer, params, warmup, train, x, w):
    _set_params(layer, params)
    for xs in warmup:  # move the running statistics away from their initial values
        layer.train(True)
        layer(xs)
    layer.train(train)
    x = x.clone().requires_grad_(True)
    (layer(x) * w).sum().backward()
    in_graph = sorted(n for n, b in layer.named_buffers() if b.requires_grad or b.grad_fn is not None)
    return x.grad, {n: p.grad for n, p in layer.named_parameters()}, in_graph


# -- probes ---------------------------------------------------------------------------------------------

def bn_script(m, kwargs, dtype, params, steps):
    layer = m.BatchNorm1d(**kwargs).to(dtype)
    return sorted(n for n, _ in layer.named_parameters()), _script(layer, params, steps)


def bn_layout(m, kwargs):
    return _layout(m.BatchNorm1d(**kwargs))


def bn_load_then_run(m, kwargs, state, steps):
    layer = m.BatchNorm1d(**kwargs).double()
    layer.load_state_dict(state)
    return _script(layer, {}, steps)


def bn_train_then_state(m, kwargs, steps):
    layer = m.BatchNorm1d(**kwargs).double()
    outputs = _script(layer, {}, steps)
    return outputs, {k: v.clone() for k, v in layer.state_dict().items()}


def bn_forward(m, kwargs, train, x):
    layer = m.BatchNorm1d(**kwargs)
    layer.train(train)
    return layer(x)


def bn_grads(m, kwargs, params, warmup, train, x, w):
    return _grads(m.BatchNorm1d(**kwargs).double(), params, warmup, train, x, w)


def ln_run(m, normalized_shape, kwargs, dtype, params, x):
    layer = m.LayerNorm(normalized_shape, **kwargs).to(dtype)
    names = sorted(n for n, _ in layer.named_parameters())
    (y_train, buffers), (y_eval, _) = _script(layer, params, [(x, True), (x, False)])
    return names, sorted(buffers), y_train, y_eval


def ln_layout(m, normalized_shape, kwargs):
    return _layout(m.LayerNorm(normalized_shape, **kwargs))


def ln_load_then_run(m, normalized_shape, kwargs, state, x):
    layer = m.LayerNorm(normalized_shape, **kwargs).double()
    layer.load_state_dict(state)
    return layer(x)


def ln_state_after_set(m, normalized_shape, kwargs, params, x):
    layer = m.LayerNorm(normalized_shape, **kwargs).double()
    _set_params(layer, params)
    return layer(x), {k: v.clone() for k, v in layer.state_dict().items()}


def ln_grads(m, normalized_shape, kwargs, params, x, w):
    return _grads(m.LayerNorm(normalized_shape, **kwargs).double(), params, [], True, x, w)


def masked(m, x, lengths, eps):
    return m.masked_batch_norm(x, lengths, eps)


def masked_grad(m, x, lengths, w):
    x = x.clone().requires_grad_(True)
    (m.masked_batch_norm(x, lengths) * w).sum().backward()
    return x.grad


# -- references and inputs --------------------------------------------------------------------------------

def random_params(shape, dtype, seed):
    return {"weight": seeded_tensor(shape, dtype, seed) + 1.0, "bias": seeded_tensor(shape, dtype, seed + 1)}


def steps_for(shapes_and_modes, dtype, seed=0, offset=0.5):
    return [(seeded_tensor(s, dtype, seed + i, scale=2.0) + offset, train)
            for i, (s, train) in enumerate(shapes_and_modes)]


def valid_mask(lengths, T):
    return torch.arange(T)[None, :] < lengths[:, None]  # (B, T)


def masked_reference(x, lengths, eps=1e-5):
    """float64 oracle: normalise the valid rows only, scatter them back into zeros."""
    mask = valid_mask(lengths, x.shape[1])
    valid = x.double()[mask]  # (M, C)
    mean = valid.mean(0)
    var = valid.var(0, unbiased=False)
    y = torch.zeros(x.shape, dtype=torch.float64)
    y[mask] = (valid - mean) / torch.sqrt(var + eps)
    return y


def with_padding(x, lengths, seed, scale=1e4):
    """``x`` whose padded positions hold large, finite garbage."""
    garbage = seeded_tensor(x.shape, x.dtype, seed, scale=scale) + scale / 3
    return torch.where(valid_mask(lengths, x.shape[1])[..., None], x, garbage)


def compare_script(actual, expected, dtype, what):
    assert len(actual) == len(expected), f"{what}: expected {len(expected)} outputs, got {len(actual)}"
    for i, ((y, bufs), (y_ref, bufs_ref)) in enumerate(zip(actual, expected)):
        close(y, y_ref, f"{what}: the output of call {i + 1}", **TOL[dtype])
        assert sorted(bufs) == sorted(bufs_ref), (
            f"{what}: after call {i + 1} the buffers are {sorted(bufs)}, expected {sorted(bufs_ref)} "
            "(register running_mean, running_var and num_batches_tracked with register_buffer)")
        for name, ref in bufs_ref.items():
            close(bufs[name], ref, f"{what}: {name} after call {i + 1}", **TOL[dtype])


@st.composite
def bn_cases(draw):
    n, c = draw(st.integers(2, 6), label="N"), draw(st.integers(1, 4), label="C")
    length = draw(st.one_of(st.none(), st.integers(1, 5)), label="L")
    kwargs = {"num_features": c, "momentum": draw(st.sampled_from([0.1, 0.5, None]), label="momentum"),
              "affine": draw(st.booleans(), label="affine"), "eps": draw(st.sampled_from([1e-5, 1e-2]))}
    return (n, c) if length is None else (n, c, length), kwargs, draw(float_dtypes(), label="dtype")


# -- BatchNorm1d ------------------------------------------------------------------------------------------

@points(3)
@given(case=bn_cases())
def test_batchnorm_training_matches_torch(submission, case):
    shape, kwargs, dtype = case
    params = random_params((kwargs["num_features"],), dtype, seed=7)
    steps = steps_for([(shape, True)] * 3, dtype, seed=len(shape))
    names, actual = submission.run(bn_script, kwargs, dtype, params, steps)
    ref = torch.nn.BatchNorm1d(**kwargs).to(dtype)
    expected_names = sorted(n for n, _ in ref.named_parameters())
    assert names == expected_names, f"BatchNorm1d({kwargs}) has parameters {names}, expected {expected_names}"
    compare_script(actual, _script(ref, params, steps), dtype, f"BatchNorm1d({kwargs}) in training on {shape}")


@points(2)
def test_running_var_is_unbiased(submission):
    for shape in ((4, 3), (2, 3, 3)):
        x = seeded_tensor(shape, torch.float64, seed=3, scale=2.0)
        dims = (0,) if len(shape) == 2 else (0, 2)
        _, [(y, bufs)] = submission.run(bn_script, {"num_features": 3, "momentum": 1.0}, torch.float64, {},
                                        [(x, True)])
        m = x.numel() // 3
        unbiased, biased = x.var(dims, unbiased=True), x.var(dims, unbiased=False)
        assert "running_var" in bufs, "BatchNorm1d must have a running_var buffer"
        rv = bufs["running_var"]
        assert not (rv.shape == biased.shape and torch.allclose(rv.double(), biased)), (
            f"running_var must be updated with the unbiased batch variance (divide by M - 1, here M = {m} "
            f"values per channel for input {shape}); yours is the biased one (divided by M)")
        close(bufs["running_var"], unbiased, f"running_var after one step with momentum=1 on {shape}")
        close(y, (x - x.mean(dims, keepdim=True)) / torch.sqrt(x.var(dims, unbiased=False, keepdim=True) + 1e-5),
              f"the training output on {shape} (it normalises with the biased variance)")


@points(2)
def test_eval_mode_uses_running_stats(submission):
    kwargs = {"num_features": 3, "momentum": 0.5}
    params = random_params((3,), torch.float64, seed=11)
    for tail in ((), (4,)):
        steps = steps_for([((5, 3) + tail, True), ((4, 3) + tail, True), ((1, 3) + tail, False),
                           ((3, 3) + tail, False)], torch.float64, seed=20, offset=1.5)
        _, actual = submission.run(bn_script, kwargs, torch.float64, params, steps)
        expected = _script(torch.nn.BatchNorm1d(**kwargs).double(), params, steps)
        for i in (2, 3):
            close(actual[i][0], expected[i][0],
                  f"the eval-mode output for input {tuple(steps[i][0].shape)} (eval mode normalises with "
                  "running_mean / running_var, not with the batch statistics)")
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                assert name in actual[i][1], f"BatchNorm1d must have a {name} buffer"
                close(actual[i][1][name], actual[1][1][name],
                      f"{name} after an eval-mode call (eval mode must not update the running statistics)")


@points(2)
def test_momentum_none_is_a_cumulative_average(submission):
    kwargs = {"num_features": 2, "momentum": None}
    steps = steps_for([((n, 2, 3), True) for n in (2, 5, 3, 4)], torch.float64, seed=30)
    _, actual = submission.run(bn_script, kwargs, torch.float64, {}, steps)
    means = torch.stack([x.mean((0, 2)) for x, _ in steps])
    variances = torch.stack([x.var((0, 2), unbiased=True) for x, _ in steps])
    for k in range(1, len(steps) + 1):
        bufs = actual[k - 1][1]
        assert "running_mean" in bufs and "num_batches_tracked" in bufs, (
            "BatchNorm1d must have running_mean and num_batches_tracked buffers")
        close(bufs["num_batches_tracked"], torch.tensor(k), f"num_batches_tracked after {k} training steps")
        close(bufs["running_mean"], means[:k].mean(0),
              f"running_mean after {k} steps with momentum=None (the plain average of the {k} batch means: "
              "factor 1 / num_batches_tracked)")
        close(bufs["running_var"], variances[:k].mean(0),
              f"running_var after {k} steps with momentum=None (the average of the unbiased batch variances)")
    compare_script(actual, _script(torch.nn.BatchNorm1d(**kwargs).double(), {}, steps), torch.float64,
                   "BatchNorm1d(momentum=None)")


def test_without_running_stats_uses_batch_stats_in_eval(submission):
    for affine in (True, False):
        kwargs = {"num_features": 3, "track_running_stats": False, "affine": affine}
        params = random_params((3,), torch.float64, seed=5)
        steps = steps_for([((4, 3), True), ((5, 3, 2), False), ((3, 3), False)], torch.float64, seed=40)
        _, actual = submission.run(bn_script, kwargs, torch.float64, params, steps)
        for _, bufs in actual:
            assert not bufs, (f"BatchNorm1d(track_running_stats=False) must have no buffers (register them as "
                              f"None), found {sorted(bufs)}")
        compare_script(actual, _script(torch.nn.BatchNorm1d(**kwargs).double(), params, steps), torch.float64,
                       f"BatchNorm1d(track_running_stats=False, affine={affine}) in train and eval mode")


@points(2)
def test_batchnorm_state_dict_matches_torch_both_ways(submission):
    for affine in (True, False):
        for track in (True, False):
            kwargs = {"num_features": 4, "affine": affine, "track_running_stats": track}
            names, state = submission.run(bn_layout, kwargs)
            ref_names, ref_state = _layout(torch.nn.BatchNorm1d(**kwargs))
            what = f"BatchNorm1d(4, affine={affine}, track_running_stats={track})"
            assert names == ref_names, f"{what} has parameters {names}, expected {ref_names}"
            assert sorted(state) == sorted(ref_state), (
                f"{what}.state_dict() has keys {sorted(state)}, expected {sorted(ref_state)}")
            for key, (shape, dtype, value) in ref_state.items():
                assert state[key][:2] == (shape, dtype), (
                    f"{what}.state_dict()['{key}'] has shape {state[key][0]} and dtype {state[key][1]}, "
                    f"expected {shape} and {dtype}")
                close(state[key][2], value, f"the initial value of {what}.{key}")
    kwargs = {"num_features": 3, "momentum": None}
    train = steps_for([((4, 3, 2), True)] * 3, torch.float64, seed=50)
    after = steps_for([((3, 3, 2), False), ((4, 3, 2), True)], torch.float64, seed=60)
    # torch -> yours: a trained torch state, then one eval and one training call (momentum=None: 1/4)
    ref = torch.nn.BatchNorm1d(**kwargs).double()
    _script(ref, random_params((3,), torch.float64, seed=1), train)
    state = {k: v.clone() for k, v in ref.state_dict().items()}
    actual = submission.run(bn_load_then_run, kwargs, state, after)
    compare_script(actual, _script(ref, {}, after), torch.float64,
                   "BatchNorm1d after load_state_dict(torch's trained state_dict)")
    # yours -> torch
    outputs, state = submission.run(bn_train_then_state, kwargs, train + after[:1])
    ref = torch.nn.BatchNorm1d(**kwargs).double()
    ref.load_state_dict(state)  # strict: same keys and shapes
    ref.eval()
    close(ref(after[0][0]), outputs[-1][0],
          "torch.nn.BatchNorm1d's eval output after loading your trained state_dict, against yours")


@points(2)
def test_batchnorm_gradients_match_torch_in_float64(submission):
    params = random_params((3,), torch.float64, seed=70)
    for shape in ((5, 3), (3, 3, 4)):
        for train in (True, False):
            kwargs = {"num_features": 3, "momentum": 0.3}
            x = seeded_tensor(shape, torch.float64, seed=71, scale=2.0)
            w = seeded_tensor(shape, torch.float64, seed=72)
            warmup = [seeded_tensor(shape, torch.float64, seed=73) + 1.0]
            gx, gp, in_graph = submission.run(bn_grads, kwargs, params, warmup, train, x, w)
            rx, rp, _ = _grads(torch.nn.BatchNorm1d(**kwargs).double(), params, warmup, train, x, w)
            mode = "training" if train else "eval"
            assert not in_graph, (f"the buffers {in_graph} require grad after a {mode}-mode call: update the "
                                  "running statistics under torch.no_grad(), outside the autograd graph")
            close(gx, rx, f"the gradient of the input in {mode} mode for {shape}")
            for name, ref in rp.items():
                assert gp.get(name) is not None, f"weight and bias must receive gradients ({name} got none)"
                close(gp[name], ref, f"the gradient of {name} in {mode} mode for {shape}")


def test_batchnorm_rejects_what_torch_rejects(submission):
    for shape in ((1, 3), (1, 3, 1)):
        submission.raises(ValueError, bn_forward, {"num_features": 3}, True, torch.ones(shape),
                          msg=f"training on input {shape} (one value per channel) must raise ValueError")
    submission.raises(ValueError, bn_forward, {"num_features": 3}, True, torch.ones(2, 3, 4, 5),
                      msg="a 4-D input must raise ValueError (BatchNorm1d takes (N, C) or (N, C, L))")


# -- LayerNorm --------------------------------------------------------------------------------------------

@st.composite
def ln_cases(draw):
    shape = draw(shapes(1, 4, 1, 5), label="shape")
    k = draw(st.integers(1, len(shape)), label="normalised dims")
    normalized = shape[-1] if k == 1 and draw(st.booleans(), label="as int") else tuple(shape[-k:])
    kwargs = {"elementwise_affine": draw(st.booleans(), label="elementwise_affine"),
              "bias": draw(st.booleans(), label="bias"), "eps": draw(st.sampled_from([1e-5, 1e-2]))}
    return shape, normalized, kwargs, draw(float_dtypes(), label="dtype")


@points(3)
@given(case=ln_cases())
def test_layernorm_matches_torch(submission, case):
    shape, normalized, kwargs, dtype = case
    ns = (normalized,) if isinstance(normalized, int) else normalized
    params = random_params(ns, dtype, seed=3)
    x = seeded_tensor(shape, dtype, seed=len(shape), scale=2.0) + 0.5
    names, buffers, y_train, y_eval = submission.run(ln_run, normalized, kwargs, dtype, params, x)
    ref = torch.nn.LayerNorm(normalized, **kwargs).to(dtype)
    ref_names = sorted(n for n, _ in ref.named_parameters())
    what = f"LayerNorm({normalized!r}, {kwargs}) on {shape}"
    assert names == ref_names, f"{what} has parameters {names}, expected {ref_names}"
    assert not buffers, f"LayerNorm has nothing to track, but it has buffers {buffers}"
    (expected, _), = _script(ref, params, [(x, True)])
    close(y_train, expected, f"{what} in training mode", **TOL[dtype])
    close(y_eval, expected, f"{what} in eval mode (LayerNorm is the same in both modes)", **TOL[dtype])


def test_layernorm_state_dict_matches_torch_both_ways(submission):
    for normalized in (4, (2, 3)):
        ns = (normalized,) if isinstance(normalized, int) else normalized
        x = seeded_tensor((3,) + ns, torch.float64, seed=8, scale=2.0)
        for affine in (True, False):
            for bias in (True, False):
                kwargs = {"elementwise_affine": affine, "bias": bias}
                what = f"LayerNorm({normalized!r}, elementwise_affine={affine}, bias={bias})"
                names, state = submission.run(ln_layout, normalized, kwargs)
                ref_names, ref_state = _layout(torch.nn.LayerNorm(normalized, **kwargs))
                assert names == ref_names, f"{what} has parameters {names}, expected {ref_names}"
                assert sorted(state) == sorted(ref_state), (
                    f"{what}.state_dict() has keys {sorted(state)}, expected {sorted(ref_state)}")
                for key, (shape, dtype, value) in ref_state.items():
                    assert state[key][:2] == (shape, dtype), (
                        f"{what}.state_dict()['{key}'] has shape {state[key][0]} and dtype {state[key][1]}, "
                        f"expected {shape} and {dtype}")
                    close(state[key][2], value, f"the initial value of {what}.{key}")
                params = random_params(ns, torch.float64, seed=9)
                ref = torch.nn.LayerNorm(normalized, **kwargs).double()
                _set_params(ref, params)
                close(submission.run(ln_load_then_run, normalized, kwargs, dict(ref.state_dict()), x), ref(x),
                      f"{what} after load_state_dict(torch's state_dict)")
                y, state = submission.run(ln_state_after_set, normalized, kwargs, params, x)
                fresh = torch.nn.LayerNorm(normalized, **kwargs).double()
                fresh.load_state_dict(state)  # strict
                close(fresh(x), y, f"torch.nn.LayerNorm after loading your {what}.state_dict(), against yours")


@points(2)
def test_layernorm_gradients_match_torch_in_float64(submission):
    for shape, normalized in (((4, 6), 6), ((2, 3, 5), (3, 5)), ((2, 3, 5), 5)):
        ns = (normalized,) if isinstance(normalized, int) else normalized
        params = random_params(ns, torch.float64, seed=80)
        x = seeded_tensor(shape, torch.float64, seed=81, scale=2.0)
        w = seeded_tensor(shape, torch.float64, seed=82)
        gx, gp, _ = submission.run(ln_grads, normalized, {}, params, x, w)
        rx, rp, _ = _grads(torch.nn.LayerNorm(normalized).double(), params, [], True, x, w)
        close(gx, rx, f"the gradient of the input of LayerNorm({normalized!r}) on {shape}")
        for name, ref in rp.items():
            assert gp.get(name) is not None, f"LayerNorm's {name} must receive a gradient"
            close(gp[name], ref, f"the gradient of LayerNorm({normalized!r}).{name} on {shape}")


def test_layernorm_eps_inside_sqrt_and_constant_rows(submission):
    x = seeded_tensor((4, 5), torch.float64, seed=90, scale=0.05)
    x[1] = 3.0  # a constant row: zero variance
    params = random_params((5,), torch.float64, seed=91)
    for eps in (0.5, 1e-5):
        _, _, y, _ = submission.run(ln_run, 5, {"eps": eps}, torch.float64, params, x)
        ref = torch.nn.LayerNorm(5, eps=eps).double()
        _set_params(ref, params)
        assert torch.isfinite(y).all(), f"LayerNorm(eps={eps}) of a constant row must be finite, got {y[1]}"
        close(y, ref(x), f"LayerNorm(5, eps={eps}) of rows with tiny variance (eps goes inside the square root: "
                         "(x - mean) / sqrt(var + eps))")


# -- masked_batch_norm -----------------------------------------------------------------------------------

@st.composite
def masked_cases(draw):
    b, t, c = draw(st.integers(1, 4), label="B"), draw(st.integers(1, 6), label="T"), draw(st.integers(1, 4))
    lengths = draw(st.lists(st.integers(0, t), min_size=b, max_size=b), label="lengths")
    if sum(lengths) == 0:
        lengths[0] = t
    return (b, t, c), lengths, draw(float_dtypes(), label="dtype"), draw(st.sampled_from([1e-5, 0.1]))


@points(3)
@given(case=masked_cases())
def test_masked_batch_norm_uses_valid_positions_only(submission, case):
    shape, lengths, dtype, eps = case
    lengths = torch.tensor(lengths)
    x = with_padding(seeded_tensor(shape, dtype, seed=shape[1], scale=2.0) + 1.0, lengths, seed=5)
    y = submission.run(masked, x, lengths, eps)
    close(y, masked_reference(x, lengths, eps).to(dtype),
          f"masked_batch_norm for shape {shape}, lengths {lengths.tolist()}, eps={eps} (statistics over the "
          "valid positions t < lengths[b] only; padded outputs 0)", **TOL[dtype])


@points(2)
def test_masked_batch_norm_padding_is_zero_and_ignored(submission):
    lengths = torch.tensor([5, 2, 0, 4])
    x = seeded_tensor((4, 5, 3), torch.float64, seed=100, scale=2.0)
    mask = valid_mask(lengths, 5)
    outputs = []
    for seed, scale in ((1, 1e4), (2, 10.0), (3, 0.0)):
        padded = with_padding(x, lengths, seed, scale)
        y = submission.run(masked, padded, lengths, 1e-5)
        close(y, masked_reference(padded, lengths), f"masked_batch_norm with padding of scale {scale:g}")
        assert (y[~mask] == 0).all(), "padded output positions (t >= lengths[b]) must be exactly 0"
        outputs.append(y)
    close(outputs[0], outputs[1], "masked_batch_norm outputs for two different paddings of the same sequences")
    full = torch.full((4,), 5)
    y = submission.run(masked, x, full, 1e-5)
    ref = torch.nn.functional.batch_norm(x.flatten(0, 1), None, None, training=True, eps=1e-5).unflatten(0, (4, 5))
    close(y, ref, "masked_batch_norm with every length = T (plain batch norm over the B*T positions)")


@points(2)
def test_masked_batch_norm_gradients_in_float64(submission):
    for lengths in ([3, 1, 4], [4, 4, 4], [0, 2, 1]):
        lengths = torch.tensor(lengths)
        x = with_padding(seeded_tensor((3, 4, 2), torch.float64, seed=110, scale=2.0), lengths, seed=111,
                         scale=100.0)
        w = seeded_tensor((3, 4, 2), torch.float64, seed=112)
        xr = x.clone().requires_grad_(True)
        (masked_reference(xr, lengths) * w).sum().backward()
        close(submission.run(masked_grad, x, lengths, w), xr.grad,
              f"the gradient of masked_batch_norm with lengths {lengths.tolist()} (padding gets gradient 0)")
