"""Public tests for dispatch: quick checks to run while you work (``dlkata check dispatch``).

The hidden tests check much more (see README.md). Probes call your module; the assertions run here.
"""

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from grader.testing import close


def add(a, b):
    return a + b


def trace_add(m, a, b):
    return m.traced_aten_ops(add, a, b)


def logged_max(m, x):
    lx = m.LoggingTensor(x)
    m.LoggingTensor.log.clear()
    values, indices = torch.max(lx, 1)
    return (list(m.LoggingTensor.log), isinstance(values, m.LoggingTensor), isinstance(indices, m.LoggingTensor),
            values.elem, indices.elem)


class _Keyed:
    def __init__(self, *keys):
        self.keys = frozenset(keys)


def toy_a_plus_b(m):
    d = m.Dispatcher()
    trail = []
    d.register("add", "Autograd", lambda disp, a, b: (trail.append("Autograd"), disp.redispatch("add", "Autograd", a, b))[1])
    d.register("add", "CPU", lambda disp, a, b: (trail.append("CPU"), "sum")[1])
    result = d.call("add", _Keyed("Autograd", "CPU"), _Keyed("CPU"))
    fell_through = d.call("add", _Keyed("Python", "CPU"), 1)  # no Python kernel: falls through to CPU
    return result, trail, fell_through


class _Truth(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def test_a_plus_b_is_traced(submission):
    a, b = torch.randn(3), torch.randn(3)
    with _Truth() as truth:
        add(a, b)
    got = submission.run(trace_add, a, b)
    assert got == truth.ops, f"traced_aten_ops(add, a, b) returned {got}; torch dispatched {truth.ops}"


def test_logging_tensor_logs_and_wraps_tuples(submission):
    x = torch.tensor([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]])
    log, values_wrapped, indices_wrapped, values, indices = submission.run(logged_max, x)
    assert log == ["aten.max.dim"], f"LoggingTensor.log after torch.max(x, 1) is {log}"
    assert values_wrapped and indices_wrapped, "both tensors of the (values, indices) result must be LoggingTensors"
    close(values, torch.tensor([3.0, 5.0]), "the values of torch.max(x, 1)")
    close(indices, torch.tensor([1, 2]), "the indices of torch.max(x, 1)")


def test_toy_dispatcher_walks_autograd_then_cpu(submission):
    result, trail, fell_through = submission.run(toy_a_plus_b)
    assert trail == ["Autograd", "CPU", "CPU"], (
        f"a + b should run the Autograd kernel, which redispatches to CPU, then the second call should fall "
        f"through Python (no kernel) to CPU; kernels run: {trail}")
    assert result == "sum" and fell_through == "sum", f"the CPU kernel's result must come back, got {result!r}, {fell_through!r}"
