"""Hidden tests for ``parameter_server``. Probes run in the sandbox and return raw outputs (weights, replica
lists, answers, exception names); every verdict is here."""

import itertools
import sys
import threading

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.testing import close, data_seed, points, seeded_tensor


# -- probes (executed against the submission, return plain data) ---------------------------------------

def _attempt(fn, *args):
    """("ok", result) or ("raised", [exception class names, most derived first], message)."""
    try:
        value = fn(*args)
        return ("ok", value.clone() if isinstance(value, torch.Tensor) else value)  # a view must not change later
    except NotImplementedError:
        raise
    except Exception as exc:
        return ("raised", [c.__name__ for c in type(exc).__mro__], str(exc)[:300])


def placement(m, num_keys, dim, num_servers, replication):
    ps = m.ParameterServer(num_keys, dim, num_servers, replication)
    return [list(ps.replicas_for(k)) for k in range(num_keys)]


def run_ops(m, config, ops):
    """Apply ops to one ParameterServer(**config); one ("ok", value) / ("raised", ...) record per op."""
    ps = m.ParameterServer(**config)
    out = []
    for op in ops:
        if op[0] == "pull":
            out.append(_attempt(ps.pull, op[1]))
        elif op[0] == "push":
            out.append(_attempt(ps.push, op[1], op[2]))
        else:
            out.append(_attempt(getattr(ps, op[0]), op[1]))
    return out


def call_raising(m, what, args):
    """Build from ``args`` (constructor) or call ``what`` on a default server; raw records."""
    if what == "__init__":
        return _attempt(lambda: m.ParameterServer(*args))
    ps = m.ParameterServer(10, 2, 4, 1)
    return _attempt(getattr(ps, what), *args)


def concurrent_pushes(m, config, keys, grads):
    """keys (T, P, n) and grads (T, P, n, dim): thread t pushes its P batches; returns every weight."""
    ps = m.ParameterServer(**config)
    errors = []

    def worker(t):
        try:
            for p in range(keys.shape[1]):
                ps.push(keys[t, p].tolist(), grads[t, p])
        except BaseException as exc:  # reported below, in the probe's own thread
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: a race shows up within a few hundred pushes
    try:
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(keys.shape[0])]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(old)
    if errors:
        raise errors[0]
    return ps.pull(list(range(config["num_keys"])))


def bounded_delay_run(m, num_workers, max_delay, schedule):
    """Each entry of schedule is a worker that asks to start its next iteration, finishing it if allowed."""
    bd = m.BoundedDelay(num_workers, max_delay)
    done = [0] * num_workers
    answers = []
    for w in schedule:
        ok = bool(bd.can_start(w, done[w]))
        answers.append(ok)
        if ok:
            bd.finish(w, done[w])
            done[w] += 1
    return answers


def bounded_delay_raising(m, num_workers, max_delay, calls):
    """Build BoundedDelay(num_workers, max_delay) (or record its error), then run calls; a record each."""
    made = _attempt(m.BoundedDelay, num_workers, max_delay)
    if made[0] != "ok":
        return [made]
    bd = made[1]
    return [_attempt(getattr(bd, name), *args) for name, args in calls]


def topk_roundtrip(m, grad, k):
    indices, values = m.topk_compress(grad, k)
    return indices, values, m.topk_decompress(indices, values, grad.shape)


def topk_raising(m, grad, k):
    return _attempt(m.topk_compress, grad, k)


def decompress(m, indices, values, shape):
    return m.topk_decompress(indices, values, shape)


# -- references (the test process) ---------------------------------------------------------------------

def expected_ranges(num_keys, num_servers):
    size, extra = divmod(num_keys, num_servers)
    lengths = [size + (r < extra) for r in range(num_servers)]
    return [r for r, n in enumerate(lengths) for _ in range(n)]  # range (= primary server) of each key


def expected_replicas(num_keys, num_servers, replication):
    return [[(r + j) % num_servers for j in range(replication + 1)] for r in expected_ranges(num_keys, num_servers)]


class DenseModel:
    """What the weights must be while no key has lost every copy."""

    def __init__(self, num_keys, dim, lr):
        self.w, self.lr = torch.zeros(num_keys, dim), lr

    def push(self, keys, grads):
        self.w.index_add_(0, torch.tensor(keys, dtype=torch.long), -self.lr * grads)


def ok_value(record, what):
    assert record[0] == "ok", f"{what} raised {record[1][0]}: {record[2]}"
    return record[1]


def raised(record, name, what):
    assert record[0] == "raised", f"{what} must raise {name}, but it returned normally"
    assert name in record[1], f"{what} must raise {name}, got {record[1][0]}: {record[2]}"


def grads_for(n, dim, seed):
    return seeded_tensor((n, dim), torch.float32, seed=seed)


# -- placement -------------------------------------------------------------------------------------------

@points(2)
@given(num_servers=st.integers(1, 6), data=st.data())
def test_key_ranges_and_replica_placement(submission, num_servers, data):
    replication = data.draw(st.integers(0, num_servers - 1), label="replication")
    num_keys = data.draw(st.integers(1, 20), label="num_keys")
    got = submission.run(placement, num_keys, 3, num_servers, replication)
    want = expected_replicas(num_keys, num_servers, replication)
    for key, (g, w) in enumerate(zip(got, want)):
        assert [int(s) for s in g] == w, (
            f"ParameterServer({num_keys}, 3, {num_servers}, replication={replication}).replicas_for({key}) "
            f"returned {g}, expected {w}: keys are split into {num_servers} contiguous ranges, earlier ranges "
            f"one key longer; range r lives on servers r, r+1, ..., r+replication (mod num_servers)")


# -- push and pull -----------------------------------------------------------------------------------------

def test_pull_starts_at_zero_and_push_applies_sgd(submission):
    g = grads_for(3, 3, seed=1)
    ops = [("pull", list(range(6))), ("push", [1, 4, 1], g), ("pull", [4, 1, 1, 0]), ("pull", [])]
    got = submission.run(run_ops, dict(num_keys=6, dim=3, num_servers=3, replication=1, lr=0.5), ops)
    zeros = ok_value(got[0], "pull(range(6)) on a fresh server")
    close(zeros, torch.zeros(6, 3), "pull(range(6)) on a fresh server (weights start at zero, float32)")
    ok_value(got[1], "push([1, 4, 1], grads)")
    w1, w4 = -0.5 * (g[0] + g[2]), -0.5 * g[1]
    close(ok_value(got[2], "pull([4, 1, 1, 0])"), torch.stack([w4, w1, w1, torch.zeros(3)]),
          "pull([4, 1, 1, 0]) after push([1, 4, 1], grads) with lr=0.5 (the two grads of key 1 add up)")
    close(ok_value(got[3], "pull([])"), torch.zeros(0, 3), "pull([]) (an empty (0, dim) tensor)")
    g = grads_for(2, 2, seed=2)
    got = submission.run(run_ops, dict(num_keys=5, dim=2, num_servers=3), [("push", [0, 4], g), ("pull", [0, 4])])
    close(ok_value(got[1], "pull"), -0.1 * g, "pull after a push with the default lr=0.1 and replication=2")


@points(2)
def test_any_replication_servers_down_keeps_every_key(submission):
    config = dict(num_keys=11, dim=2, num_servers=5, replication=2, lr=0.1)
    keys = list(range(11))
    g1, g2 = grads_for(11, 2, seed=3), grads_for(11, 2, seed=4)
    for down in itertools.combinations(range(5), 2):
        ops = [("push", keys, g1), *[("fail", s) for s in down], ("pull", keys), ("push", keys[::-1], g2),
               ("pull", keys)]
        got = submission.run(run_ops, config, ops)
        what = f"with replication=2 and servers {down} down, pull(all keys)"
        close(ok_value(got[3], what), -0.1 * g1, what)
        ok_value(got[4], f"with servers {down} down, push(all keys)")
        close(ok_value(got[5], what + " after a push"), -0.1 * (g1 + g2.flip(0)),
              what + " after a push made while they were down (it updates every alive copy)")


@points(2)
def test_recover_restores_everything_the_server_holds(submission):
    config = dict(num_keys=10, dim=3, num_servers=4, replication=1, lr=0.1)
    keys = list(range(10))
    g1, g2 = grads_for(10, 3, seed=5), grads_for(10, 3, seed=6)
    for s in range(4):
        # while s is down, its ranges change; after it recovers, its two neighbours go down in turn
        # (one at a time: replication=1), so each range s holds must be served from s's restored copy
        for other in ((s + 1) % 4, (s - 1) % 4):
            ops = [("push", keys, g1), ("fail", s), ("push", keys, g2), ("recover", s), ("fail", other),
                   ("pull", keys)]
            got = submission.run(run_ops, config, ops)
            ok_value(got[3], f"recover({s})")
            what = (f"pull(all keys) after fail({s}), a push, recover({s}), fail({other}) (replication=1: server "
                    f"{s} must have copied back every range it holds, including the push made while it was down)")
            close(ok_value(got[5], what), -0.1 * (g1 + g2), what)


@points(2)
@settings(max_examples=15)
@given(ops=st.lists(st.tuples(st.sampled_from(["push", "push", "fail", "recover", "pull"]),
                              st.integers(0, 4), st.lists(st.integers(0, 8), min_size=1, max_size=5)),
                    min_size=1, max_size=14))
def test_random_faults_never_lose_data(submission, ops):
    num_keys, dim, num_servers, replication = 9, 2, 5, 2
    down, plan = set(), []  # a plan that never has more than `replication` servers down
    for i, (kind, server, keys) in enumerate(ops):
        if kind == "fail" and len(down) < replication:
            down.add(server)
            plan.append(("fail", server))
        elif kind == "recover" and down:
            s = sorted(down)[server % len(down)]
            down.discard(s)
            plan.append(("recover", s))
        elif kind == "push":
            plan.append(("push", keys, grads_for(len(keys), dim, seed=100 + i)))
        plan.append(("pull", list(range(num_keys))))
    plan.append(("pull", list(range(num_keys))))
    got = submission.run(run_ops, dict(num_keys=num_keys, dim=dim, num_servers=num_servers, replication=2), plan)
    model, history = DenseModel(num_keys, dim, 0.1), []
    for op, record in zip(plan, got):
        step = f"{op[0]}({op[1] if op[0] != 'pull' else 'all keys'})"
        if op[0] == "push":
            model.push(op[1], op[2])
        if op[0] == "pull":
            what = "pull(all keys) after " + (", ".join(history) or "nothing")
            close(ok_value(record, what), model.w, what + " (never more than 2 servers down, replication=2)")
        else:
            ok_value(record, step)
            history.append(step)


@points(2)
def test_key_whose_every_copy_is_down_is_unavailable_for_good(submission):
    # 10 keys on 5 servers, replication=1: range 0 (keys 0, 1) lives on servers 0 and 1 only
    config = dict(num_keys=10, dim=2, num_servers=5, replication=1, lr=0.1)
    g, h = grads_for(10, 2, seed=7), grads_for(2, 2, seed=8)
    keys = list(range(10))
    ops = [("push", keys, g), ("fail", 0), ("fail", 1),
           ("pull", [0]), ("pull", [5, 1]), ("pull", [2, 3, 8, 9, 4]),       # 3, 4, 5
           ("push", [5, 0], h), ("pull", [5]), ("push", [5, 2], h),          # 6, 7, 8
           ("recover", 0), ("recover", 1), ("pull", [1]),                    # 9, 10, 11
           ("fail", 2), ("fail", 4), ("pull", [2, 3, 5, 8, 9])]              # 12, 13, 14
    got = submission.run(run_ops, config, ops)
    for i, what in ((3, "pull([0])"), (4, "pull([5, 1])")):
        raised(got[i], "KeyUnavailableError", f"with servers 0 and 1 (both copies of keys 0, 1) down, {what}")
        assert "RuntimeError" in got[i][1], "KeyUnavailableError must be a subclass of RuntimeError"
    close(ok_value(got[5], "pull([2, 3, 8, 9, 4])"), -0.1 * g[[2, 3, 8, 9, 4]],
          "with servers 0 and 1 down, pull([2, 3, 8, 9, 4]) (every one still has a copy alive)")
    raised(got[6], "KeyUnavailableError", "push([5, 0], ...) touching the lost key 0")
    close(ok_value(got[7], "pull([5])"), -0.1 * g[[5]],
          "key 5 after push([5, 0], ...) failed on the lost key 0 (a failed push applies nothing)")
    ok_value(got[8], "push([5, 2], ...) with servers 0 and 1 down")
    ok_value(got[9], "recover(0)")
    ok_value(got[10], "recover(1)")
    raised(got[11], "KeyUnavailableError", "pull([1]) after servers 0 and 1 recovered (no copy of key 1 survived)")
    want = -0.1 * g[[2, 3, 5, 8, 9]]
    want[0] -= 0.1 * h[1]  # push([5, 2], h): key 2 got h[1], key 5 got h[0]
    want[2] -= 0.1 * h[0]
    close(ok_value(got[14], "pull([2, 3, 5, 8, 9])"), want,
          "pull([2, 3, 5, 8, 9]) after recover(0), recover(1), fail(2), fail(4): keys 2, 3 and 8, 9 must be "
          "served from the copies servers 1 and 0 restored when they recovered")


@points(3)
def test_concurrent_pushes_lose_no_update(submission):
    threads, pushes, per_push, num_keys, dim = 8, 150, 3, 6, 4
    g = torch.Generator().manual_seed(data_seed(9))
    keys = torch.randint(0, num_keys, (threads, pushes, per_push), generator=g)
    grads = torch.randint(-3, 4, (threads, pushes, per_push, dim), generator=g).float()
    config = dict(num_keys=num_keys, dim=dim, num_servers=3, replication=2, lr=1.0)
    got = submission.run(concurrent_pushes, config, keys, grads)
    want = torch.zeros(num_keys, dim).index_add_(0, keys.reshape(-1), -grads.reshape(-1, dim))
    close(got, want, f"the weights after {threads} threads pushed {pushes} batches each at the same time "
                     "(updates were lost: a push's read-modify-write of every copy must be atomic)")


def test_bad_arguments_raise_value_error(submission):
    for args in ((10, 2, 4, 4), (10, 2, 4, 7), (10, 2, 3, -1)):
        record = submission.run(call_raising, "__init__", args)
        raised(record, "ValueError", f"ParameterServer{args} (replication must be in [0, num_servers))")
    for what, args in (("fail", (4,)), ("fail", (-1,)), ("recover", (4,)), ("replicas_for", (10,)),
                       ("replicas_for", (-1,)), ("pull", ([3, 10],)), ("pull", ([-1],)),
                       ("push", ([10], torch.ones(1, 2))), ("push", ([0, 1], torch.ones(3, 2))),
                       ("push", ([0], torch.ones(1, 5)))):
        shown = ", ".join(f"tensor of shape {tuple(a.shape)}" if isinstance(a, torch.Tensor) else repr(a)
                          for a in args)
        record = submission.run(call_raising, what, args)
        raised(record, "ValueError", f"on ParameterServer(10, 2, 4, 1), {what}({shown})")
    got = submission.run(run_ops, dict(num_keys=10, dim=2, num_servers=4, replication=1),
                         [("push", [0, 10], torch.ones(2, 2)), ("pull", [0])])
    raised(got[0], "ValueError", "push([0, 10], ...) with key 10 out of range")
    close(ok_value(got[1], "pull([0])"), torch.zeros(1, 2), "key 0 after push([0, 10]) raised (nothing applied)")


# -- bounded delay -----------------------------------------------------------------------------------------

def check_bounded_delay(answers, num_workers, max_delay, schedule):
    done = [0] * num_workers
    for step, (w, ok) in enumerate(zip(schedule, answers)):
        t = done[w]
        want = max_delay is None or min(done) >= t - max_delay
        assert ok == want, (
            f"BoundedDelay({num_workers}, max_delay={max_delay}): with finished iteration counts {done}, "
            f"can_start({w}, {t}) returned {ok}, expected {want} (iteration t may start once every worker "
            f"has finished iteration t - max_delay - 1)")
        if ok:
            done[w] += 1
    assert len(answers) == len(schedule), "bounded_delay probe returned the wrong number of answers"


@points(2)
@given(num_workers=st.integers(1, 4), max_delay=st.sampled_from([None, 0, 1, 2, 3]),
       data=st.data())
def test_bounded_delay_follows_the_rule(submission, num_workers, max_delay, data):
    fast = data.draw(st.integers(0, num_workers - 1), label="fast worker")
    schedule = data.draw(st.lists(st.one_of(st.just(fast), st.integers(0, num_workers - 1)),
                                  min_size=1, max_size=40), label="schedule")
    answers = submission.run(bounded_delay_run, num_workers, max_delay, schedule)
    check_bounded_delay(answers, num_workers, max_delay, schedule)


def test_bounded_delay_bsp_and_asynchronous(submission):
    # BSP: worker 0 must wait for 1 and 2 at every iteration
    schedule = [0, 0, 1, 0, 2, 0, 0, 1, 2, 0]
    answers = submission.run(bounded_delay_run, 3, 0, schedule)
    assert answers == [True, False, True, False, True, True, False, True, True, True], (
        f"BoundedDelay(3, max_delay=0) is bulk synchronous: for worker sequence {schedule} each asking to "
        f"start its next iteration, got {answers}")
    # max_delay=2: worker 0 may run iterations 0, 1, 2 before worker 1 finishes iteration 0, not 3
    answers = submission.run(bounded_delay_run, 2, 2, [0, 0, 0, 0, 1, 0, 0])
    assert answers == [True, True, True, False, True, True, False], (
        f"BoundedDelay(2, max_delay=2): worker 0 may start iterations 0..2 while worker 1 has finished "
        f"nothing, iteration 3 once worker 1 finished iteration 0; got {answers} for workers [0, 0, 0, 0, 1, 0, 0]")
    answers = submission.run(bounded_delay_run, 2, None, [0] * 30)
    assert all(answers), "BoundedDelay(2, max_delay=None) is fully asynchronous: every can_start must be True"


def test_bounded_delay_bad_arguments(submission):
    for n, d in ((0, 1), (2, -1)):
        record = submission.run(bounded_delay_raising, n, d, [])[0]
        raised(record, "ValueError", f"BoundedDelay({n}, {d})")
    calls = [("can_start", (2, 0)), ("can_start", (-1, 0)), ("can_start", (0, -1)), ("finish", (2, 0)),
             ("finish", (0, 1))]
    got = submission.run(bounded_delay_raising, 2, 1, calls)
    for (name, args), record in zip(calls, got):
        why = " (worker 0 has not finished iteration 0 yet)" if args == (0, 1) else ""
        raised(record, "ValueError", f"on BoundedDelay(2, 1), {name}{args}{why}")


# -- top-k compression --------------------------------------------------------------------------------------

@points(2)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple),
       dtype=st.sampled_from([torch.float32, torch.float64]), data=st.data())
def test_topk_keeps_the_largest_magnitudes(submission, shape, dtype, data):
    grad = seeded_tensor(shape, dtype, seed=len(shape) * 7 + shape[0])
    k = data.draw(st.integers(0, grad.numel()), label="k")
    indices, values, dense = submission.run(topk_roundtrip, grad, k)
    what = f"topk_compress(grad of shape {shape}, k={k})"
    assert isinstance(indices, torch.Tensor) and indices.dim() == 1 and indices.numel() == k, (
        f"{what} must return 1-D indices of length {k}, got {getattr(indices, 'shape', type(indices).__name__)}")
    assert not indices.is_floating_point(), f"{what} indices must be an integer tensor, got {indices.dtype}"
    flat = grad.reshape(-1)
    want = set(flat.abs().topk(k).indices.tolist())
    assert set(indices.tolist()) == want, (
        f"{what} returned flat indices {sorted(indices.tolist())}, expected those of the k largest |grad|: "
        f"{sorted(want)}")
    close(values, flat[indices.long()], f"{what} values (the signed entries grad.flatten()[indices])")
    kept = torch.zeros_like(flat)
    kept[list(want)] = flat[list(want)]
    close(dense, kept.reshape(shape), f"topk_decompress(*{what}, shape) (top-k entries kept, zeros elsewhere)")


def test_topk_ties_edges_and_errors(submission):
    grad = torch.tensor([[-3.0, 1.0, 3.0], [0.5, -2.0, 2.0]])
    indices, values, _ = submission.run(topk_roundtrip, grad, 2)
    assert sorted(indices.tolist()) == [0, 2], f"topk_compress(k=2) of {grad.tolist()}: indices {indices.tolist()}"
    assert sorted(values.tolist()) == [-3.0, 3.0], (
        f"topk_compress must keep the sign: values of -3 and 3 expected, got {values.tolist()}")
    indices, values, _ = submission.run(topk_roundtrip, grad, 3)  # a tie between -2 and 2: either one
    assert len(set(indices.tolist())) == 3, f"topk_compress returned repeated indices {indices.tolist()}"
    close(values, grad.reshape(-1)[indices.long()], "topk_compress(k=3) values")
    assert sorted(values.abs().tolist()) == [2.0, 3.0, 3.0], f"topk_compress(k=3) of {grad.tolist()}: {values}"
    indices, values, dense = submission.run(topk_roundtrip, grad, 6)
    assert sorted(indices.tolist()) == list(range(6)), "topk_compress(k=numel) must return every index"
    close(dense, grad, "topk_decompress(topk_compress(grad, numel)) (the whole gradient)")
    for k in (7, -1):
        raised(submission.run(topk_raising, grad, k), "ValueError", f"topk_compress(grad with 6 entries, k={k})")


def test_topk_decompress_places_values(submission):
    indices, values = torch.tensor([5, 0, 3]), torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    for shape in ((2, 3), torch.Size([6]), (1, 2, 3)):
        want = torch.tensor([-2.0, 0.0, 0.0, 3.0, 0.0, 1.0], dtype=torch.float64).reshape(shape)
        close(submission.run(decompress, indices, values, shape), want,
              f"topk_decompress(indices=[5, 0, 3], values=[1., -2., 3.] (float64), shape={tuple(shape)})")
