"""Hidden tests for ``dispatch``. Probes run in the sandbox and return raw outputs; every verdict is here.

What torch "really dispatches" is never hard-coded: the test process runs the same function under its own
``TorchDispatchMode`` (the same torch build as the sandbox) and compares.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from grader.testing import close, float_dtypes, points, seeded_tensor, shapes

KEYS = ("Python", "Autograd", "CPU")


# -- functions traced (module-level so the sandbox can look them up by name) ---------------------------

def add(a, b):
    return a + b


def add_scalar(a, b):
    return a + 1


def mul_sum(a, b):
    return (a * b).sum()


def linear_no_bias(a, b):
    return F.linear(a, b)


def matmul_transposed(a, b):
    return a @ b.mT


def index_then_mul(a, b):
    return a[0] * 2


def where_positive(a, b):
    return torch.where(a > 0, a, b)


def max_over_dim(a, b):
    return torch.max(a, 1)


def split_rows(a, b):
    return a.split(1, 0)


def cat_pair(a, b):
    return torch.cat([a, b])


def mean_keepdim(a, b):
    return a.mean(0, keepdim=True)


def add_in_place(a, b):
    return a.add_(b)


def backward_of_mul_sum(a, b):
    a = a.clone().requires_grad_(True)
    (a * b).sum().backward()
    return a.grad


def add_with_alpha(a, b, *, alpha):
    return torch.add(a, b, alpha=alpha)


def raises_value_error(a, b):
    a + b
    raise ValueError("raised by the traced function")


TRACE_CASES = ("add", "add_scalar", "mul_sum", "linear_no_bias", "matmul_transposed", "index_then_mul",
               "where_positive", "max_over_dim", "split_rows", "cat_pair", "mean_keepdim", "add_in_place",
               "backward_of_mul_sum")
LOGGING_CASES = ("add", "add_scalar", "mul_sum", "linear_no_bias", "matmul_transposed", "index_then_mul",
                 "where_positive", "max_over_dim", "split_rows", "cat_pair", "mean_keepdim")


# -- probes (executed against the submission, return plain data) ---------------------------------------

def trace(m, name, a, b, **kwargs):
    return m.traced_aten_ops(globals()[name], a.clone(), b.clone(), **kwargs)


def trace_kwargs(m, a, b, alpha):
    calls = []

    def fn(x, y, *, alpha):
        calls.append(alpha)
        return torch.add(x, y, alpha=alpha)

    ops = m.traced_aten_ops(fn, a, b, alpha=alpha)
    return ops, calls


def trace_twice_and_raise(m, a, b):
    from torch.utils._python_dispatch import _get_current_dispatch_mode

    first = m.traced_aten_ops(add, a, b)
    a * b  # outside any trace
    second = m.traced_aten_ops(mul_sum, a, b)
    try:
        m.traced_aten_ops(raises_value_error, a, b)
        raised = None
    except ValueError as exc:
        raised = str(exc)
    return first, second, raised, _get_current_dispatch_mode() is None


def _describe(m, value):
    """Tensors as (is a LoggingTensor, its plain elem or None); tuples and lists element-wise."""
    if isinstance(value, torch.Tensor):
        is_logging = isinstance(value, m.LoggingTensor)
        elem = getattr(value, "elem", None) if is_logging else None
        plain = elem.detach().clone() if type(elem) is torch.Tensor else None
        return ["tensor", is_logging, plain]
    if isinstance(value, (tuple, list)):
        return ["sequence", [_describe(m, v) for v in value]]
    return ["other", repr(value)]


def logged(m, name, a, b):
    la, lb = m.LoggingTensor(a.clone()), m.LoggingTensor(b.clone())
    m.LoggingTensor.log.clear()
    out = globals()[name](la, lb)
    return list(m.LoggingTensor.log), _describe(m, out), _describe(m, la)


def wrap_unwrap(m, t):
    w = m.LoggingTensor(t)
    return (type(w).__name__, isinstance(w, torch.Tensor), w.shape, w.dtype,
            type(w.elem) is torch.Tensor, w.elem.clone() if type(w.elem) is torch.Tensor else None)


class _Keyed:
    def __init__(self, keys, value=0):
        self.keys = frozenset(keys)
        self.value = value


def _register_all(d, op, keys, trail):
    for key in keys:
        d.register(op, key, lambda disp, *args, _key=key: (trail.append(_key), _key)[1])


def priority(m, arg_key_sets, registered):
    d = m.Dispatcher()
    trail = []
    _register_all(d, "op", registered, trail)
    args = [_Keyed(keys) for keys in arg_key_sets] + [3, "not keyed"]
    try:
        return d.call("op", *args), trail
    except NotImplementedError as exc:  # reached only after register worked
        return ("raised", str(exc)), trail


def kernel_arguments(m):
    d = m.Dispatcher()
    seen = []
    d.register("op", "CPU", lambda disp, *args: seen.append((disp is d, [getattr(a, "value", a) for a in args])))
    d.call("op", _Keyed({"CPU"}, 1), 2, _Keyed({"CPU"}, 3))
    return seen, m.Dispatcher.KEYS


def fall_through(m):
    d = m.Dispatcher()
    d.register("add", "CPU", lambda disp, *args: "CPU")
    d.register("mul", "Autograd", lambda disp, *args: "Autograd")
    d.register("mul", "CPU", lambda disp, *args: "CPU")
    d.call("add", _Keyed({"CPU"}))  # a stub fails here, as not implemented
    results = []
    for op, keys in (("add", {"Python", "Autograd", "CPU"}), ("mul", {"Python", "Autograd", "CPU"}), ("mul", {"CPU"})):
        try:
            results.append(d.call(op, _Keyed(keys)))
        except NotImplementedError as exc:
            results.append(("raised NotImplementedError", str(exc)))
    return results


def replace_kernel(m):
    d = m.Dispatcher()
    d.register("add", "CPU", lambda disp, *args: "first")
    d.register("add", "CPU", lambda disp, *args: "second")
    d.register("sub", "CPU", lambda disp, *args: "sub")
    return d.call("add", _Keyed({"CPU"})), d.call("sub", _Keyed({"CPU"}))


def a_plus_b(m, a_has_autograd_key):
    """The toy version of ``a + b``: Autograd records the node, then redispatches to the CPU kernel."""
    d = m.Dispatcher()
    trail = []

    def autograd_add(disp, a, b):
        trail.append("Autograd")
        out = disp.redispatch("add", "Autograd", a, b)
        return ("AddBackward0", out)

    def cpu_add(disp, a, b):
        trail.append("CPU")
        return a.value + b.value

    def python_add(disp, a, b):
        trail.append("Python")
        return disp.redispatch("add", "Python", a, b)

    d.register("add", "Autograd", autograd_add)
    d.register("add", "CPU", cpu_add)
    d.register("add", "Python", python_add)
    a = _Keyed({"Autograd", "CPU"} if a_has_autograd_key else {"CPU"}, 2)
    b = _Keyed({"CPU"}, 3)
    result = d.call("add", a, b)
    plain_trail = list(trail)
    trail.clear()
    wrapped = d.call("add", _Keyed({"Python", "CPU"}, 2), b)  # Python redispatches; no Autograd in the set
    return result, plain_trail, wrapped, list(trail)


def redispatch_uses_given_args(m):
    d = m.Dispatcher()
    d.register("op", "Python", lambda disp, x: ("Python", disp.redispatch("op", "Python", _Keyed({"CPU"}, x.value))))
    d.register("op", "Autograd", lambda disp, x: "Autograd")
    d.register("op", "CPU", lambda disp, x: f"CPU got {x.value}")
    return d.call("op", _Keyed({"Python", "Autograd", "CPU"}, 7))


def missing_kernels(m):
    d = m.Dispatcher()
    d.register("add", "CPU", lambda disp, *args: "add on CPU")
    ok = d.call("add", _Keyed({"CPU"}))  # a stub fails here, as not implemented
    out = {"ok": ok}
    attempts = {
        "call": lambda: d.call("matmul", _Keyed({"Autograd", "CPU"}), _Keyed({"Python"})),
        "empty": lambda: d.call("matmul", 3),
        "redispatch": lambda: d.redispatch("add", "CPU", _Keyed({"Autograd", "CPU"})),
        "fresh": lambda: m.Dispatcher().call("add", _Keyed({"CPU"})),
    }
    for name, attempt in attempts.items():
        try:
            out[name] = ("returned", repr(attempt()))
        except NotImplementedError as exc:
            out[name] = ("raised", str(exc))
    return out


def register_unknown_key(m):
    m.Dispatcher().register("add", "CUDA", lambda disp, *args: None)


def redispatch_unknown_key(m):
    d = m.Dispatcher()
    d.register("add", "CPU", lambda disp, *args: None)
    d.redispatch("add", "CUDA", _Keyed({"CPU"}))


# -- truth and references (the test process's own torch) -----------------------------------------------

class _Truth(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def dispatched(name, a, b, **kwargs):
    """What torch dispatches for ``name(a, b)``, with fresh copies of the inputs."""
    a, b = a.clone(), b.clone()
    with _Truth() as mode:
        out = globals()[name](a, b, **kwargs)
    return mode.ops, out, a


def inputs(name, shape=(2, 3), dtype=torch.float64):
    a = seeded_tensor(shape, dtype, seed=1)
    b = seeded_tensor((shape[-1], shape[-1]) if name == "linear_no_bias" else shape, dtype, seed=2)
    return a, b


def _check_structure(desc, expected, what):
    if isinstance(expected, torch.Tensor):
        assert desc[0] == "tensor", f"{what} must be a tensor, got {desc}"
        assert desc[1], f"{what} must be a LoggingTensor: wrap every tensor in the result"
        assert desc[2] is not None, f"{what}.elem must be a plain torch.Tensor (unwrap the inputs before calling func)"
        close(desc[2], expected, f"{what}.elem")
    elif isinstance(expected, (tuple, list)):
        assert desc[0] == "sequence" and len(desc[1]) == len(expected), (
            f"{what} must be a sequence of {len(expected)} results, got {desc}")
        for i, (d, e) in enumerate(zip(desc[1], expected)):
            _check_structure(d, e, f"{what}[{i}]")


def _ops(ops, what):
    assert isinstance(ops, list) and all(isinstance(o, str) for o in ops), (
        f"{what} must be a list of strings such as 'aten.add.Tensor', got {ops!r}")
    return ops


# -- traced_aten_ops -----------------------------------------------------------------------------------

@points(3)
def test_traced_ops_are_what_torch_dispatches(submission):
    for name in TRACE_CASES:
        a, b = inputs(name)
        truth, _, _ = dispatched(name, a, b)
        got = _ops(submission.run(trace, name, a, b), f"traced_aten_ops({name}, a, b)")
        assert got == truth, (f"traced_aten_ops({name}, a, b) returned {got}, but torch dispatched {truth} "
                              "(str(func) of every OpOverload, in order)")


def test_traced_ops_pass_keyword_arguments(submission):
    a, b = inputs("add")
    ops, calls = submission.run(trace_kwargs, a, b, 2.0)
    truth, _, _ = dispatched("add_with_alpha", a, b, alpha=2.0)
    assert calls == [2.0], f"fn must be called once as fn(*args, **kwargs); it was called with alpha={calls}"
    assert _ops(ops, "traced_aten_ops(fn, a, b, alpha=2.0)") == truth, (
        f"traced_aten_ops(fn, a, b, alpha=2.0) returned {ops}, torch dispatched {truth}")


@points(2)
def test_tracing_stops_when_traced_aten_ops_returns_or_raises(submission):
    a, b = inputs("add")
    first, second, raised, no_mode_left = submission.run(trace_twice_and_raise, a, b)
    assert first == dispatched("add", a, b)[0], f"traced_aten_ops(add) returned {first}"
    assert second == dispatched("mul_sum", a, b)[0], (
        f"a second traced_aten_ops(...) returned {second}: it must hold only that call's ops (a fresh list, "
        "and the first mode must be exited)")
    assert raised == "raised by the traced function", (
        "an exception raised by fn must propagate out of traced_aten_ops unchanged"
        + ("" if raised is not None else " (nothing was raised)"))
    assert no_mode_left, "the dispatch mode is still active after traced_aten_ops: use it as `with mode:`"


# -- LoggingTensor -------------------------------------------------------------------------------------

def test_logging_tensor_wraps_and_unwraps(submission):
    t = seeded_tensor((2, 3), torch.float32)
    name, is_tensor, shape, dtype, elem_plain, elem = submission.run(wrap_unwrap, t)
    assert name == "LoggingTensor" and is_tensor, "LoggingTensor(t) must be an instance of the torch.Tensor subclass"
    assert (tuple(shape), dtype) == ((2, 3), torch.float32), (
        f"LoggingTensor(t) must report t's shape and dtype, got {tuple(shape)} {dtype}")
    assert elem_plain, "LoggingTensor(t).elem must be the plain tensor t"
    close(elem, t, "LoggingTensor(t).elem")


@points(3)
def test_logging_tensor_logs_what_torch_dispatches(submission):
    for name in LOGGING_CASES:
        a, b = inputs(name)
        truth, _, _ = dispatched(name, a, b)
        log, _, _ = submission.run(logged, name, a, b)
        assert _ops(log, "LoggingTensor.log") == truth, (
            f"after {name}(LoggingTensor(a), LoggingTensor(b)), LoggingTensor.log is {log}, but torch "
            f"dispatched {truth}")


@points(2)
@settings(max_examples=15)
@given(shape=shapes(2, 3, 1, 4), dtype=float_dtypes(), name=st.sampled_from(LOGGING_CASES))
def test_logging_tensor_results_are_correct_and_wrapped(submission, shape, dtype, name):
    a, b = inputs(name, shape, dtype)
    _, expected, _ = dispatched(name, a, b)
    _, desc, _ = submission.run(logged, name, a, b)
    _check_structure(desc, expected, f"the result of {name}(LoggingTensor(a), LoggingTensor(b)) for shape {shape}")


def test_logging_tensor_in_place_op_updates_the_wrapped_tensor(submission):
    a, b = inputs("add_in_place")
    truth, expected, a_after = dispatched("add_in_place", a, b)
    log, desc, desc_a = submission.run(logged, "add_in_place", a, b)
    assert log == truth, f"after a.add_(b) on LoggingTensors, the log is {log}; torch dispatched {truth}"
    _check_structure(desc, expected, "the result of a.add_(b)")
    _check_structure(desc_a, a_after, "a after a.add_(b) (the in-place op must update the tensor a wraps)")


# -- Dispatcher ----------------------------------------------------------------------------------------

def _model(arg_key_sets, registered):
    key_set = set().union(*arg_key_sets) if arg_key_sets else set()
    return next((k for k in KEYS if k in key_set and k in registered), None)


@points(2)
@settings(max_examples=30)
@given(arg_key_sets=st.lists(st.frozensets(st.sampled_from(KEYS)), min_size=1, max_size=3),
       registered=st.frozensets(st.sampled_from(KEYS), min_size=1))
def test_call_runs_the_highest_priority_key_with_a_kernel(submission, arg_key_sets, registered):
    expected = _model(arg_key_sets, registered)
    result, trail = submission.run(priority, [sorted(s) for s in arg_key_sets], sorted(registered))
    what = (f"with kernels for {sorted(registered)} and arguments whose keys are "
            f"{[sorted(s) for s in arg_key_sets]} (key set = their union)")
    if expected is None:
        assert isinstance(result, tuple) and result[0] == "raised", (
            f"{what}, no key of the set has a kernel: call must raise NotImplementedError, it returned {result!r}")
    else:
        assert result == expected and trail == [expected], (
            f"{what}, the {expected} kernel must run (highest priority first: {', '.join(KEYS)}; keys without a "
            f"kernel fall through); got {result!r}, kernels run: {trail}")


def test_kernels_receive_the_dispatcher_and_the_arguments(submission):
    seen, keys = submission.run(kernel_arguments)
    assert seen == [(True, [1, 2, 3])], (
        f"a kernel must be called as kernel(dispatcher, *args), once; it saw {seen} "
        "(True means the first argument was the dispatcher itself)")
    assert tuple(keys) == KEYS, f"Dispatcher.KEYS must stay {KEYS}, got {keys}"


@points(2)
def test_keys_without_a_kernel_fall_through(submission):
    add_result, mul_result, mul_cpu = submission.run(fall_through)
    assert add_result == "CPU", (
        f"with only a CPU kernel for 'add', an argument with keys Python, Autograd, CPU must reach it (Python "
        f"and Autograd have no kernel, so they fall through); got {add_result!r}")
    assert mul_result == "Autograd", f"Autograd is the highest key with a kernel for 'mul'; got {mul_result!r}"
    assert mul_cpu == "CPU", f"an argument with only the CPU key must reach the CPU kernel; got {mul_cpu!r}"


def test_registering_again_replaces_the_kernel(submission):
    add_result, sub_result = submission.run(replace_kernel)
    assert add_result == "second", f"registering (op, key) again must replace the kernel; the call ran {add_result!r}"
    assert sub_result == "sub", f"kernels are per (op, key): 'sub' must run its own kernel, got {sub_result!r}"


@points(3)
def test_a_plus_b_walks_autograd_then_cpu(submission):
    result, trail, wrapped, wrapped_trail = submission.run(a_plus_b, True)
    assert trail == ["Autograd", "CPU"] and result == ("AddBackward0", 5), (
        f"a (keys Autograd, CPU) + b (key CPU): the Autograd kernel runs first and redispatches after 'Autograd' "
        f"to the CPU kernel; kernels run {trail}, result {result!r}")
    assert wrapped_trail == ["Python", "CPU"] and wrapped == 5, (
        f"with keys Python and CPU, the Python kernel's redispatch after 'Python' must skip Autograd (not in the "
        f"key set) and reach CPU; kernels run {wrapped_trail}, result {wrapped!r}")
    result, trail, _, _ = submission.run(a_plus_b, False)
    assert trail == ["CPU"] and result == 5, (
        f"with arguments that have only the CPU key (like inference tensors, made under torch.inference_mode()) "
        f"only the CPU kernel runs; kernels run {trail}")


def test_redispatch_uses_the_arguments_it_is_given(submission):
    result = submission.run(redispatch_uses_given_args)
    assert result == ("Python", "CPU got 7"), (
        "redispatch(op, 'Python', x) must use the key set of the x it is given (here only CPU), and only keys "
        f"below 'Python'; got {result!r}")


@points(2)
def test_no_kernel_raises_not_implemented_naming_op_and_keys(submission):
    out = submission.run(missing_kernels)
    assert out["ok"] == "add on CPU", f"a registered CPU kernel must run; got {out['ok']!r}"
    for name, op, keys, what in (
            ("call", "matmul", ("Python", "Autograd", "CPU"), "call('matmul', ...) with no kernel for matmul"),
            ("empty", "matmul", (), "call('matmul', 3) whose arguments have no keys"),
            ("redispatch", "add", (), "redispatch('add', 'CPU', ...) (no key below CPU)"),
            ("fresh", "add", ("CPU",), "call('add', ...) on a new Dispatcher (each has its own kernels)")):
        kind, text = out[name]
        assert kind == "raised", f"{what} must raise NotImplementedError; it returned {text}"
        missing = [w for w in (op, *keys) if w not in text]
        assert not missing, (f"the NotImplementedError of {what} must name the op and every key of the key "
                             f"set; {missing} missing from {text!r}")


def test_unknown_keys_raise_value_error(submission):
    submission.raises(ValueError, register_unknown_key, msg="register(op, 'CUDA', kernel) must raise ValueError")
    submission.raises(ValueError, redispatch_unknown_key, msg="redispatch(op, 'CUDA', ...) must raise ValueError")
