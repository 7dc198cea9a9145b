"""Public tests for ``normalization``: quick checks against torch. Run ``dlkata check normalization``.

The hidden tests go much further (random shapes, momentum=None, state_dict both ways, gradients, ...).
"""

import torch

from grader.testing import close, seeded_tensor


def batchnorm_steps(m, xs, modes):
    layer = m.BatchNorm1d(3).double()
    out = []
    for x, train in zip(xs, modes):
        layer.train(train)
        out.append(layer(x))
    return out, layer.running_mean.clone(), layer.running_var.clone()


def layernorm(m, normalized_shape, x):
    return m.LayerNorm(normalized_shape).double()(x)


def masked(m, x, lengths):
    return m.masked_batch_norm(x, lengths)


def test_batchnorm_train_then_eval_matches_torch(submission):
    xs = [seeded_tensor((6, 3), seed=s, scale=2.0) + 1.0 for s in range(3)]
    modes = [True, True, False]
    ys, running_mean, running_var = submission.run(batchnorm_steps, xs, modes)
    ref = torch.nn.BatchNorm1d(3).double()
    for i, (x, train) in enumerate(zip(xs, modes)):
        ref.train(train)
        close(ys[i], ref(x), f"BatchNorm1d output of call {i + 1} ({'train' if train else 'eval'} mode)")
    close(running_mean, ref.running_mean, "running_mean after two training calls")
    close(running_var, ref.running_var, "running_var after two training calls (unbiased batch variance)")


def test_batchnorm_3d_input(submission):
    x = seeded_tensor((4, 3, 5), seed=4)
    ys, _, _ = submission.run(batchnorm_steps, [x], [True])
    close(ys[0], torch.nn.BatchNorm1d(3).double()(x), "BatchNorm1d on (N, C, L): statistics over N and L")


def test_layernorm_matches_torch(submission):
    x = seeded_tensor((2, 3, 4), seed=5, scale=3.0)
    for normalized_shape in (4, (3, 4)):
        close(submission.run(layernorm, normalized_shape, x), torch.nn.LayerNorm(normalized_shape).double()(x),
              f"LayerNorm({normalized_shape!r}) on (2, 3, 4)")


def test_masked_batch_norm_ignores_padding(submission):
    lengths = torch.tensor([3, 1])
    x = seeded_tensor((2, 4, 2), seed=6)
    x[1, 1:] = 1000.0  # padding
    x[0, 3:] = -1000.0
    y = submission.run(masked, x, lengths)
    valid = torch.cat([x[0, :3], x[1, :1]])  # (4, 2) valid positions
    expected = torch.zeros_like(x)
    expected[0, :3] = (x[0, :3] - valid.mean(0)) / torch.sqrt(valid.var(0, unbiased=False) + 1e-5)
    expected[1, :1] = (x[1, :1] - valid.mean(0)) / torch.sqrt(valid.var(0, unbiased=False) + 1e-5)
    close(y, expected, "masked_batch_norm (statistics over valid positions only, padding -> 0)")
