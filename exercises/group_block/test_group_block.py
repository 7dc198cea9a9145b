"""Public tests for group_block: quick checks to run while you work (``dlkata check group_block``).

The hidden tests check much more (see README.md). Probes call your module; the assertions run here.
"""

import math

import torch
import torch.nn.functional as F

from grader.testing import close, seeded_tensor


def hard_softmax_and_grad(m, x, upstream):
    x = x.clone().requires_grad_(True)
    y = m.hard_softmax(x, -1)
    (grad,) = torch.autograd.grad(y, x, upstream)
    return y.detach(), grad


def samples(m, logits, n, hard):
    return m.gumbel_softmax(logits.repeat(n, 1), tau=1.0, hard=hard, dim=-1,
                            generator=torch.Generator().manual_seed(0))


def eval_soft_forward(m, groups, tokens):
    torch.manual_seed(0)
    module = m.AssignAttention(groups.shape[-1], hard=False).double().eval()
    out, a = module(groups, tokens)
    weights = {n: (getattr(module, n).weight.detach(), getattr(module, n).bias.detach())
               for n in ("q_proj", "k_proj", "v_proj", "proj")}
    return weights, out.detach(), a.detach()


def test_hard_softmax_forward_and_backward(submission):
    x = seeded_tensor((3, 5))
    upstream = seeded_tensor((3, 5), seed=1)
    y, grad = submission.run(hard_softmax_and_grad, x, upstream)
    close(y, F.one_hot(x.argmax(-1), 5).double(), "hard_softmax(x) (the one-hot of the argmax)")
    xr = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(torch.softmax(xr, -1), xr, upstream)
    close(grad, expected, "the gradient of hard_softmax (softmax's gradient, straight-through)")


def test_soft_samples_sum_to_one_and_hard_samples_are_one_hot(submission):
    logits = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
    soft = submission.run(samples, logits, 100, False)
    close(soft.sum(-1), torch.ones(100, dtype=torch.float64), "soft samples summed over dim -1")
    hard = submission.run(samples, logits, 100, True)
    close(hard, F.one_hot(hard.argmax(-1), 3).double(), "hard samples (one-hot in the forward pass)")


def test_hard_sample_frequencies(submission):
    logits = torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
    n = 5000
    freq = submission.run(samples, logits, n, True).sum(0) / n
    p = torch.softmax(logits, -1)
    bound = 6 * torch.sqrt(p * (1 - p) / n)
    assert ((freq - p).abs() <= bound).all(), f"hard sample frequencies {freq.tolist()}, expected {p.tolist()}"


def test_eval_soft_assignment_is_normalised_over_groups(submission):
    groups, tokens = seeded_tensor((2, 3, 4), seed=2), seeded_tensor((2, 5, 4), seed=3)
    w, out, a = submission.run(eval_soft_forward, groups, tokens)
    logits = F.linear(groups, *w["q_proj"]) @ F.linear(tokens, *w["k_proj"]).mT / math.sqrt(4)
    expected_a = torch.softmax(logits, 1)  # over the groups, not the tokens
    close(a, expected_a, "A of AssignAttention(4, hard=False) in eval mode (softmax over dim 1)")
    v = F.linear(tokens, *w["v_proj"])
    close(out, F.linear(expected_a / (expected_a.sum(-1, keepdim=True) + 1.0) @ v, *w["proj"]),
          "the new groups (proj((A / (A.sum(-1) + assign_eps)) @ v))")
