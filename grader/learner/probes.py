"""Probes the HTML report runs in the sandbox against the learner's code (module-level functions of a
file of their own, as ``grader.sandbox.Sandbox`` requires: each returns plain data only).

``optimiser_path`` also runs in the grader's process with ``torch.optim`` as the module: the reference
trajectory."""

from __future__ import annotations

import torch


def rosenbrock(p):
    """f(x, y) = (1 - x)^2 + 100 (y - x^2)^2: a curved, badly conditioned valley, minimum at (1, 1)."""
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def optimiser_path(m, name, start, lr, steps):
    """The points ``m.<name>([p], lr=lr)`` visits from ``start`` minimising ``rosenbrock``: (steps + 1, 2)."""
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optimiser = getattr(m, name)([p], lr=lr)
    points = [p.detach().clone()]
    for _ in range(steps):
        optimiser.zero_grad()
        rosenbrock(p).backward()
        optimiser.step()
        points.append(p.detach().clone())
    return torch.stack(points)


def one_f_one_b(m, num_stages, num_microbatches):
    """The learner's ``megatron.one_f_one_b_schedule(p, m)`` as plain lists."""
    schedule = m.one_f_one_b_schedule(num_stages, num_microbatches)
    return [[(str(op), int(mb)) for op, mb in stage] for stage in schedule]
