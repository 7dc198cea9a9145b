"""The kit's own tests of ``grader.distributed.run_world``: results, failures, hangs, no process left behind."""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from grader.distributed import CollectiveLog, WorldError, WorldTimeout, run_world
from grader.errors import ForbiddenCall, ProbeTimeout, SubmissionRaised
from grader.sandbox import Sandbox
from tests.conftest import open_to_sandboxes


# -- rank functions (module level: a sandbox's probe reaches them by name) ---------------------------

def sum_ranks(rank, world_size, scale, *, offset=0.0):
    t = torch.full((3,), float(rank + 1)) * scale
    dist.all_reduce(t)
    return {"rank": rank, "world": dist.get_world_size(), "sum": t + offset, "pid": os.getpid()}


def record_pid(folder):
    Path(folder, f"rank{dist.get_rank()}.pid").write_text(str(os.getpid()))


def one_rank_raises(rank, world_size, folder):
    record_pid(folder)
    if rank == 1:
        raise ValueError("rank one refuses")
    dist.barrier()  # the others wait for rank 1 forever: its error must still come back at once
    return rank


def one_rank_exits(rank, world_size, folder, how):
    record_pid(folder)
    if rank == world_size - 1:
        if how == "exit":
            os._exit(3)
        faulthandler.disable()  # pytest's fault handler would print the rank's stack to the test's stderr
        os.kill(os.getpid(), signal.SIGSEGV)
    dist.barrier()
    return rank


def one_rank_hangs(rank, world_size, folder, with_child=False):
    record_pid(folder)
    if with_child:  # a grandchild in the rank's process group must die with it
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        Path(folder, f"child{rank}.pid").write_text(str(child.pid))
    if rank == 0:
        time.sleep(120)
    return rank


def parallel_matmul(rank, world_size):
    a = torch.ones(512, 512)
    return float((a @ a)[0, 0])


def unpicklable(rank, world_size):
    return lambda: rank


def many_spellings(rank, world_size):
    from torch.distributed import all_reduce
    import torch.distributed._functional_collectives as funcol
    import torch.distributed.nn.functional as dist_nn

    t = torch.ones(6)
    out = torch.empty(6 * world_size)
    x = torch.ones(2, 3, requires_grad=True)
    with CollectiveLog() as log:
        dist.all_reduce(t)
        all_reduce(t[:2])
        dist.all_reduce(t, async_op=True).wait()
        dist.group.WORLD.allreduce([t[:3]]).wait()           # the ProcessGroup method
        funcol.wait_tensor(funcol.all_reduce(t, "sum", dist.group.WORLD))
        dist_nn.all_reduce(x).sum().backward()               # autograd-aware: all-reduces in forward and backward
        dist.all_gather_into_tensor(out, t)
        dist.broadcast(t, 0)
        dist.reduce_scatter_tensor(t[:1].clone(), torch.ones(world_size))
        dist.barrier()
    return [(c["kind"], c["numel"]) for c in log.calls], log.count("all_reduce"), [c["async_op"] for c in log.calls[:5]]


# -- probes for the sandbox tests ----------------------------------------------------------------------

def probe_world(m, world_size):
    return run_world(sum_ranks, world_size, 1.0)


def probe_hanging_world(m, folder):
    return run_world(one_rank_hangs, 2, folder, timeout_s=60)


def call_forbidden(rank, world_size, m):
    return m.uses_forbidden()


def call_stub(rank, world_size, m):
    return m.stub(rank)


def call_mine(rank, world_size, m):
    return m.mine(rank)


def probe_stub_in_rank(m):
    return run_world(call_stub, 2, m)


def probe_forbidden_in_rank(m):
    return run_world(call_forbidden, 2, m)


# -- helpers ---------------------------------------------------------------------------------------------

def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def pids(folder: Path, prefix: str = "rank") -> list[int]:
    return [int(p.read_text()) for p in sorted(folder.glob(f"{prefix}*.pid"))]


def assert_all_gone(folder: Path, expected: int, prefix: str = "rank", wait_s: float = 5.0) -> None:
    found = pids(folder, prefix)
    assert len(found) == expected, f"expected {expected} {prefix} pid files, found {len(found)}"
    deadline = time.monotonic() + wait_s
    while any(alive(p) for p in found) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in found if alive(p)], "a process of the world was left behind"


# -- tests -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_results_come_back_in_rank_order(world_size):
    results = run_world(sum_ranks, world_size, 2.0, offset=0.5)
    total = 2.0 * world_size * (world_size + 1) / 2
    assert [r["rank"] for r in results] == list(range(world_size))
    assert all(r["world"] == world_size for r in results)
    for r in results:
        torch.testing.assert_close(r["sum"], torch.full((3,), total + 0.5))
    assert len({r["pid"] for r in results} | {os.getpid()}) == world_size + 1, "each rank is its own process"
    assert not [p for p in (r["pid"] for r in results) if alive(p)], "ranks must be reaped after success"


def test_world_after_a_multithreaded_op_in_the_parent_does_not_hang():
    a = torch.randn(512, 512)
    (a @ a).sum()  # starts the parent's OpenMP pool; a forked child would hang on its next parallel op
    start = time.monotonic()
    assert run_world(parallel_matmul, 2, timeout_s=20) == [512.0, 512.0]
    assert time.monotonic() - start < 10


def test_a_raising_rank_names_itself_with_its_traceback(tmp_path):
    start = time.monotonic()
    with pytest.raises(WorldError) as info:
        run_world(one_rank_raises, 3, str(tmp_path), timeout_s=20)
    assert not isinstance(info.value, WorldTimeout)
    assert isinstance(info.value, ValueError), "the error must also be an instance of the rank's exception class"
    text = str(info.value)
    assert text.startswith("rank 1 of 3 raised ValueError: rank one refuses"), text
    assert "one_rank_raises" in text, "the rank's traceback must be part of the message"
    assert time.monotonic() - start < 10, "an error must come back at once, not at the timeout"
    assert_all_gone(tmp_path, 3)


@pytest.mark.parametrize("how, what", [("exit", "status 3"), ("segv", "SIGSEGV")])
def test_a_crashing_rank_names_itself(tmp_path, how, what):
    with pytest.raises(WorldError) as info:
        run_world(one_rank_exits, 2, str(tmp_path), how, timeout_s=20)
    assert not isinstance(info.value, WorldTimeout)
    text = str(info.value)
    assert text.startswith("rank 1 of 2 crashed"), text
    assert what in text, text
    assert_all_gone(tmp_path, 2)


def test_a_hanging_rank_times_out_and_everything_is_killed(tmp_path):
    start = time.monotonic()
    with pytest.raises(WorldTimeout) as info:
        run_world(one_rank_hangs, 2, str(tmp_path), True, timeout_s=2)
    elapsed = time.monotonic() - start
    assert 2 <= elapsed < 6, f"timed out after {elapsed:.1f} s, expected about 2 s"
    assert str(info.value).startswith("rank 0 of a world of 2 did not finish within 2 s"), str(info.value)
    assert_all_gone(tmp_path, 2)
    assert_all_gone(tmp_path, 2, prefix="child")


def test_collective_log_counts_every_spelling():
    calls, n_all_reduce, async_ops = run_world(many_spellings, 2)[1]
    assert calls == [("all_reduce", 6), ("all_reduce", 2), ("all_reduce", 6), ("all_reduce", 3), ("all_reduce", 6),
                     ("all_reduce", 6), ("all_reduce", 6), ("all_gather", 12), ("broadcast", 6),
                     ("reduce_scatter", 1), ("barrier", 1)], calls   # gloo's barrier all-reduces one element
    assert n_all_reduce == 7
    assert async_ops == [False, False, True, True, None], async_ops


def test_an_unpicklable_result_is_an_error():
    with pytest.raises(WorldError, match="rank 0 of 1 raised"):
        run_world(unpicklable, 1, timeout_s=20)


def test_bad_world_size():
    with pytest.raises(ValueError):
        run_world(sum_ranks, 0, 1.0)


# -- from inside a sandbox, as a probe runs it -------------------------------------------------------------

@pytest.fixture
def submission_file(tmp_path):
    path = tmp_path / "subm.py"
    path.write_text("import torch\n\n"
                    "def uses_forbidden():\n    return torch.nn.parallel.DistributedDataParallel(None)\n\n"
                    "class StubError(ValueError):\n    pass\n\n"
                    "def stub(rank):\n    raise NotImplementedError('stub')\n\n"
                    "def mine(rank):\n    if rank == 1:\n        raise StubError('mine')\n    return rank\n")
    return path


def test_a_world_runs_inside_the_sandbox(submission_file):
    box = Sandbox(submission_file, "subm", timeout_s=30, probe_files=(__file__,))
    try:
        results = box.run(probe_world, 2)
    finally:
        box.close()
    assert [r["rank"] for r in results] == [0, 1]
    torch.testing.assert_close(results[1]["sum"], torch.full((3,), 3.0))


def test_a_forbidden_call_in_a_rank_is_reported_as_forbidden(submission_file):
    box = Sandbox(submission_file, "subm", timeout_s=30, probe_files=(__file__,),
                  forbidden=("torch.nn.parallel.DistributedDataParallel",))
    try:
        with pytest.raises(ForbiddenCall, match="DistributedDataParallel"):
            box.run(probe_forbidden_in_rank)
    finally:
        box.close()


def test_a_rank_exception_keeps_its_class_across_the_sandbox(submission_file):
    box = Sandbox(submission_file, "subm", timeout_s=30, probe_files=(__file__,))
    try:
        with pytest.raises(SubmissionRaised) as info:
            box.run(probe_stub_in_rank)
    finally:
        box.close()
    err = info.value
    assert err.outcome == "not_implemented" and err.is_a("WorldError"), (err.outcome, err.mro)


def test_a_learner_exception_class_is_kept(submission_file, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("subm_direct", submission_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules["subm_direct"] = module
    spec.loader.exec_module(module)
    try:
        with pytest.raises(module.StubError, match="rank 1 of 2 raised StubError: mine"):
            run_world(call_mine, 2, module)
    finally:
        del sys.modules["subm_direct"]


def test_ranks_die_with_a_sandbox_killed_at_its_probe_timeout(submission_file, tmp_path):
    folder = tmp_path / "pids"
    folder.mkdir()
    box = Sandbox(submission_file, "subm", timeout_s=3, probe_files=(__file__,),
                  writable=(str(open_to_sandboxes(folder)),))
    try:
        with pytest.raises(ProbeTimeout):
            box.run(probe_hanging_world, str(folder))
    finally:
        box.close()
    assert_all_gone(folder, 2)
