"""Grading at scale: fork safety of the sandboxes, and batch grading on a Dask cluster.

Timings are not asserted here (a busy CI machine would make them flaky): ``bench/run.py`` measures them.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from grader import batch, catalog, runner, sandbox, zygote
from grader.batch import grade_batch
from grader.plugin import TIMEOUT_ENV
from grader.sandbox import Sandbox
from tests.conftest import KIT, MUTANTS, VARIANTS, open_to_sandboxes

HANG_S = 30  # a threaded 512x512 matmul takes milliseconds; a child stuck in libgomp never finishes

# The grader's process starts an OpenMP thread pool (a 512x512 matmul on 2 threads), then grades: every
# sandbox is forked from the fork server (which never ran a threaded op), so each sandbox's own threaded
# matmul finishes. The second sandbox proves that a sandbox's threads do not reach the fork server.
SANDBOX_AFTER_MATMUL = """
import sys, torch
from pathlib import Path
sys.path.insert(0, {kit!r})
sys.path.insert(0, {probes!r})
torch.set_num_threads(2)
a = torch.randn(512, 512)
(a @ a).sum()
from grader.sandbox import Sandbox
from matmul_probe import threaded_matmul
for n in range(2):
    box = Sandbox(Path({module!r}), "fork_safety", timeout_s={hang})
    try:
        print("sandbox", n, box.run(threaded_matmul), flush=True)
    finally:
        box.close()
print("done", flush=True)
"""

PROBE = """
import torch

def threaded_matmul(module):
    torch.set_num_threads(2)
    a = torch.ones(512, 512)
    return [torch.get_num_threads(), float((a @ a).sum())]
"""

# What the fork server exists to avoid: os.fork straight from the warmed-up process.
PLAIN_FORK = """
import os, torch
torch.set_num_threads(2)
a = torch.randn(512, 512)
(a @ a).sum()
pid = os.fork()
if pid == 0:
    (a @ a).sum()
    os._exit(0)
os.waitpid(pid, 0)
print("child finished", flush=True)
"""


def run_script(source: str, timeout_s: float) -> subprocess.CompletedProcess | None:
    """Run ``source`` in a fresh interpreter of its own session; None if it was killed at the timeout
    (its whole process group, so a hung child does not outlive the test)."""
    proc = subprocess.Popen([sys.executable, "-c", source], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, cwd=KIT, env={**os.environ, "OMP_NUM_THREADS": "2"})
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_sandbox_after_a_threaded_matmul_does_not_hang(tmp_path):
    (tmp_path / "matmul_probe.py").write_text(PROBE)
    module = tmp_path / "fork_safety.py"
    module.write_text("VALUE = 1\n")
    source = SANDBOX_AFTER_MATMUL.format(kit=str(KIT), probes=str(tmp_path), module=str(module), hang=HANG_S)
    done = run_script(source, timeout_s=4 * HANG_S + 120)  # + the fork server's start on a busy machine
    assert done is not None, "a sandbox forked after the grader ran a threaded matmul hung"
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[-1] == "done"
    for n in range(2):
        assert f"sandbox {n} [2, {512.0 ** 3:.1f}]" in lines, done.stdout  # 2 threads, the right product


def test_plain_fork_after_a_threaded_matmul_hangs():
    """The control: the same matmul in a child forked directly from the warmed-up process hangs."""
    done = run_script(PLAIN_FORK, timeout_s=HANG_S)
    if done is not None and "child finished" in done.stdout:
        pytest.skip("this torch build's OpenMP survives fork: the fork server's precaution is not needed here")
    assert done is None, f"the control neither hung nor finished: {done and done.stderr[-2000:]}"


# -- spare sandboxes -----------------------------------------------------------------------------

def probe_value(module):
    return [module.VALUE, os.getpid()]


def _value_and_pid(module: Path) -> tuple[int, int, list[int]]:
    """(module.VALUE, the sandbox's pid, the pids of the spares forked after it, oldest first)."""
    box = Sandbox(module, "spared", timeout_s=30, probe_files=(__file__,))
    try:
        value, pid = box.run(probe_value)
        server = sandbox.fork_server()
        server._answered()  # the spares' pids are read lazily, at the next request
        return value, pid, [spare.pid for spare in server._ready]
    finally:
        box.close()


def _settled(pid: int) -> None:
    """Wait until sandbox ``pid`` has read its files (it enters its working directory right after)."""
    deadline = time.monotonic() + 60
    while "dlkata-sandbox-" not in os.readlink(f"/proc/{pid}/cwd"):
        assert time.monotonic() < deadline, "the spare sandbox never started"
        time.sleep(0.01)


def test_the_next_sandbox_is_the_spare_unless_the_file_changed(tmp_path):
    module = tmp_path / "spared.py"
    module.write_text("VALUE = 1\n")
    _, _, spares = _value_and_pid(module)
    assert len(spares) == sandbox.SPARES
    value, pid, next_spares = _value_and_pid(module)
    assert (value, pid) == (1, spares[0]), "the next sandbox of the same spec should be the oldest spare"
    for spare in next_spares:
        _settled(spare)
    module.write_text("VALUE = 2\n")  # same size, and possibly the same mtime tick
    value, pid, spares = _value_and_pid(module)
    assert value == 2, "a spare forked before the save served the old file"
    assert not set(spares) & set(next_spares)
    sandbox.sweep()
    assert not [p for p in spares if Path(f"/proc/{p}").exists()], "a spare outlived the sweep"


SPARED_TESTS = """
def value(module):
    return module.VALUE

def test_first(submission):
    assert submission.run(value) == 1

def test_static():
    pass

def test_second(submission):
    assert submission.run(value) == 1

def test_last(submission):
    assert submission.run(value) == 1
"""


def test_no_spare_is_forked_past_the_last_test(tmp_path, monkeypatch):
    """Each test asks for as many spares as there are tests with a submission still to run (at most
    ``SPARES``): the last one forks none that would only be thrown away."""
    (tmp_path / "spared").mkdir()
    (tmp_path / "spared" / "spared.py").write_text("VALUE = 1\n")
    tests = tmp_path / "test_spared.py"
    tests.write_text(SPARED_TESTS)
    asked = []
    spawn = sandbox.ForkServer.spawn
    monkeypatch.setattr(sandbox.ForkServer, "spawn",
                        lambda server, spec, spares=None: asked.append(spares) or spawn(server, spec, spares))
    collector = runner.run_pytest(tests, tmp_path, isolation="sandbox")
    assert {name: t.outcome for name, t in collector.tests.items()} == dict.fromkeys(
        ["test_first", "test_static", "test_second", "test_last"], "passed")
    assert asked == [2, 1, 0]
    assert sandbox.fork_server()._ready == [], "a spare was left for a test that does not exist"


def _socket_inodes(pid: int) -> set[str]:
    fds = Path(f"/proc/{pid}/fd")
    return {link for link in (os.readlink(fd) for fd in fds.iterdir()) if link.startswith("socket:")}


@pytest.fixture
def two_graders(tmp_path, monkeypatch):
    """A module to sandbox, a shared fork server and two graders on it (a batch's workers), no spares."""
    module = tmp_path / "shared.py"
    module.write_text("VALUE = 1\n")
    monkeypatch.setenv(zygote.SPARES_ENV, "0")
    shared = zygote.Shared()
    try:
        yield module, shared, [sandbox.ForkServer((zygote.Peer(shared.pidfd), shared.client())) for _ in range(2)]
    finally:
        shared.close()


def test_graders_sharing_a_fork_server_lose_only_their_own_sandboxes(two_graders, monkeypatch):
    """A batch's workers share one fork server. A sandbox holds none of its control sockets, and a worker
    that dies mid-test (killed at the learner timeout) takes its own sandboxes with it, not the others'."""
    module, shared, graders = two_graders
    boxes, pids = [], []
    for grader in graders:
        monkeypatch.setattr(sandbox, "_server", grader)
        boxes.append(Sandbox(module, "shared", timeout_s=30, probe_files=(__file__,)))
        pids.append(boxes[-1].run(probe_value)[1])
    assert not _socket_inodes(pids[0]) & _socket_inodes(shared.process.pid), \
        "a sandbox inherited a control socket of the fork server"
    graders[0]._control.close()  # the first worker dies
    boxes[0]._sock.close()
    deadline = time.monotonic() + 15
    while Path(f"/proc/{pids[0]}").exists():
        assert time.monotonic() < deadline, "a sandbox outlived the grader that asked for it"
        time.sleep(0.01)
    assert boxes[1].run(probe_value) == [1, pids[1]], "a grader's death killed another grader's sandbox"
    boxes[1].close()
    graders[1].sweep()
    assert not Path(f"/proc/{pids[1]}").exists(), "a sandbox outlived its grader's sweep"


def probe_network_namespace(module):
    return os.readlink("/proc/self/ns/net")


def test_graders_sharing_a_fork_server_get_network_namespaces_of_their_own(two_graders, monkeypatch):
    """One network namespace per grader process, not per sandbox (creating one costs the kernel ~5 ms):
    a grader's sandboxes share it, two graders grading at once never do, and none is the machine's."""
    module, _shared, graders = two_graders
    if not any("network namespace" in line for line in graders[0].isolation()):
        pytest.skip("this machine gives the grader no network namespaces (not root)")
    seen = []
    for grader in graders:
        monkeypatch.setattr(sandbox, "_server", grader)
        for _ in range(2):
            box = Sandbox(module, "shared", timeout_s=30, probe_files=(__file__,))
            try:
                seen.append(box.run(probe_network_namespace))
            finally:
                box.close()
        grader.sweep()
    host = os.readlink("/proc/self/ns/net")
    assert host not in seen, f"a sandbox ran in the machine's network namespace: {seen}"
    assert seen[0] == seen[1] and seen[2] == seen[3], f"one grader's sandboxes got different namespaces: {seen}"
    assert seen[0] != seen[2], f"two graders' sandboxes shared a network namespace: {seen}"


STDLIB_SIDE_EFFECTS = {"__main__", "antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo"}


def probe_import_stdlib(module):
    """Import every standard-library module not imported yet; {name: error} for those that fail."""
    import importlib

    failed = {}
    for name in sorted(sys.stdlib_module_names - STDLIB_SIDE_EFFECTS - set(sys.modules)):
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"
    return failed


def test_a_sandbox_imports_what_the_grader_can_import(tmp_path):
    """A sandbox imports lazily from Python's own folders after it has dropped root, even where Python
    lives below a folder only root may enter (``/root/.pyenv``): a correct submission that uses
    ``graphlib`` or ``time.strptime`` must not fail for it. Every standard-library module the fork server
    did not import is tried; one may fail only if it fails outside the sandbox too."""
    module = tmp_path / "stdlib.py"
    module.write_text("VALUE = 1\n")
    box = Sandbox(module, "stdlib", timeout_s=120, probe_files=(__file__,))
    try:
        inside = box.run(probe_import_stdlib)
    finally:
        box.close()
    check = "import importlib, sys\nfor n in sys.argv[1:]:\n    try: importlib.import_module(n)\n    except Exception: print(n)"
    outside = subprocess.run([sys.executable, "-c", check, *inside], capture_output=True, text=True, timeout=120)
    only_inside = {name: inside[name] for name in set(inside) - set(outside.stdout.split())}
    assert not only_inside, f"standard-library modules that only a sandbox cannot import: {only_inside}"


WARMED_FOR_SOFTMAX = """
import json, sys
sys.path.insert(0, {kit!r})
from grader import zygote
zygote.start_early(("softmax",))  # neither torch._dynamo nor causal_mask's forbidden names warmed
from pathlib import Path
from grader import catalog
from grader.runner import grade_submission
result = grade_submission(Path({kit!r}) / "solutions", (catalog.get("causal_mask"),))
print(json.dumps([[e.score, e.max_score, e.message] for e in result.exercises]))
"""


def test_a_fork_server_warmed_for_another_exercise_grades_the_same(tmp_path):
    """A fork server imports the ``preload`` of the exercises it is warmed for only (``dlkata grade
    --exercise softmax`` skips torch._dynamo's ~1.2 s); it warms another exercise at its first spawn
    (causal_mask's tests run a dispatch mode, which loads torch._dynamo), with the same grade."""
    done = subprocess.run([sys.executable, "-c", WARMED_FOR_SOFTMAX.format(kit=str(KIT))], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path, env={**os.environ, "DLKATA_STATE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    [[score, max_score, message]] = json.loads(done.stdout.splitlines()[-1])
    assert score == max_score, f"causal_mask's reference scored {score}/{max_score} from a softmax-warmed fork server: {message}"



def test_the_fork_server_warms_exercises_while_idle_and_first_the_one_a_spawn_needs():
    """Past torch and the test helpers, a fork server warms one exercise per idle step (a grader need not
    wait for it), then backs its heap with huge pages; a spawn first warms its own exercise."""
    later = zygote.Later([catalog.get("softmax"), catalog.get("causal_mask")])
    later.exercise("causal_mask")
    assert "causal_mask" in zygote._warmed and "softmax" not in zygote._warmed
    assert str(catalog.get("causal_mask").hidden_tests) in sandbox._probe_modules  # its test file is loaded
    steps = 0
    while later.pending:
        later.step()
        steps += 1
    assert "softmax" in zygote._warmed and steps > 2  # softmax, listing the heap, at least one collapse

SLEEPER = """
import os, time
from pathlib import Path

def softmax(x, dim=-1):
    (Path({evidence!r}) / str(os.getpid())).touch()
    time.sleep(3600)

log_softmax = softmax
"""


def test_a_learner_past_the_timeout_gets_a_row_and_its_sandbox_dies_mid_batch(tmp_path, monkeypatch):
    """The worker grading a learner who runs past ``LEARNER_TIMEOUT_S`` is killed: that row says why, the
    other learner is graded, and the shared fork server kills the stuck sandbox while the batch goes on."""
    (tmp_path / "evidence").mkdir()
    evidence = open_to_sandboxes(tmp_path / "evidence")
    folder = tmp_path / "class"
    (folder / "sleeper" / "softmax").mkdir(parents=True)
    (folder / "sleeper" / "softmax" / "softmax.py").write_text(SLEEPER.format(evidence=str(evidence)))
    (folder / "reference" / "softmax").mkdir(parents=True)
    (folder / "reference" / "softmax" / "softmax.py").write_bytes(
        (KIT / "solutions" / "softmax" / "softmax.py").read_bytes())
    monkeypatch.setattr(batch, "LEARNER_TIMEOUT_S", 30)  # the reference, cold worker included, needs ~10 s
    monkeypatch.setenv(TIMEOUT_ENV, "600")  # so the learner timeout, not the probe's, ends the sleeper
    monkeypatch.setenv(sandbox.WRITABLE_ENV, str(evidence))
    left_running = []

    def on_row(row) -> None:
        if row.learner == "sleeper":  # the batch is still running: its fork server has not been closed
            deadline = time.monotonic() + 15
            pids = [p.name for p in evidence.iterdir()]
            while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.05)
            left_running.extend(pid for pid in pids if Path(f"/proc/{pid}").exists())
            assert pids, "the sleeper's sandbox never started"

    rows = {r.learner: r for r in grade_batch(folder, tmp_path / "grades.csv", ["softmax"], jobs=2,
                                              selected=("softmax",), progress=on_row)}
    assert rows["sleeper"].error == "grading took longer than 30 s"
    assert rows["reference"].result["score"] == rows["reference"].result["max_score"] > 0
    assert not left_running, "a killed worker's sandbox outlived it"


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _children_of(pid: int) -> list[int]:
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


@pytest.fixture
def solved(tmp_path) -> Path:
    """A submission of the softmax reference."""
    (tmp_path / "solved" / "softmax").mkdir(parents=True)
    (tmp_path / "solved" / "softmax" / "softmax.py").write_bytes(
        (KIT / "solutions" / "softmax" / "softmax.py").read_bytes())
    return tmp_path / "solved"


def test_batch_graders_are_forked_by_the_shared_fork_server_and_use_it(tmp_path, solved):
    """A batch's graders are forked by its fork server (so they start with torch imported) and ask that
    same server for their sandboxes: a grader that started a fork server of its own would have a child.
    Pinned (a grader on every core), they take a core each."""
    cores = sorted(os.sched_getaffinity(0))
    try:
        graders = [batch._borrow(("softmax",), pin=True) for _ in range(2)]
        assert sorted(g.core for g in graders) == sorted((cores * 2)[:2]), "two graders share a core"
        fork_server = batch._shared.process.pid
        for n, grader in enumerate(graders):
            assert _parent(grader.pid) == fork_server, "a batch grader was not forked by the fork server"
            assert os.sched_getaffinity(grader.pid) == {grader.core}, "a pinned grader runs on other cores"
            assert grader.grade(solved, tmp_path / f"{n}.json", 120) == ""
            result = json.loads((tmp_path / f"{n}.json").read_text(encoding="utf-8"))
            assert result["score"] == result["max_score"] > 0
            assert _children_of(grader.pid) == [], "a batch grader started processes of its own"
        for grader in graders:
            batch._give_back(grader)
    finally:
        batch.close_workers()


def probe_cores(module):
    return sorted(os.sched_getaffinity(0))


def test_a_sandbox_runs_on_the_cores_of_its_grader(tmp_path):
    """A grader pinned to one core (a batch's, with a grader on every core) gets its sandboxes on it."""
    module = tmp_path / "pinned.py"
    module.write_text("VALUE = 1\n")
    cores = os.sched_getaffinity(0)
    one = {max(cores)}
    sandbox.fork_server()  # started on every core, before the grader is pinned
    os.sched_setaffinity(0, one)
    try:
        box = Sandbox(module, "pinned", timeout_s=30, probe_files=(__file__,))
        try:
            assert box.run(probe_cores) == sorted(one), "a sandbox runs on cores its grader may not use"
        finally:
            box.close()
    finally:
        os.sched_setaffinity(0, cores)


def test_a_batch_grader_that_dies_gives_its_exit_code_and_spares_the_others(tmp_path, solved):
    """A grader killed from outside (the OOM killer, say): its learner's row gives the exit code, and the
    fork server, which kills orphans while idle, leaves the other grader running."""
    try:
        doomed, other = batch._borrow(("softmax",)), batch._borrow(("softmax",))
        os.kill(doomed.pid, signal.SIGKILL)
        assert doomed.grade(solved, tmp_path / "doomed.json", 120) == "the grader process died (exit code -9)"
        batch._give_back(doomed)
        assert not doomed.alive and not Path(f"/proc/{doomed.pid}").exists(), "a dead grader was not reaped"
        assert other.grade(solved, tmp_path / "other.json", 120) == ""
        assert json.loads((tmp_path / "other.json").read_text(encoding="utf-8"))["score"] > 0
        batch._give_back(other)
    finally:
        batch.close_workers()


def test_only_the_batch_may_have_the_fork_server_fork_a_grader():
    """A grader's control socket (what a compromised grader holds) cannot ask for an unsandboxed process:
    the fork server hangs up on it and forks nothing."""
    shared = zygote.Shared()
    try:
        control = shared.client()
        before = _children_of(shared.process.pid)
        requests, replies = os.pipe()
        socket.send_fds(control, [json.dumps(["grader", {"exercises": [], "env": {}}]).encode()],
                               [requests, replies])
        control.settimeout(30)
        assert control.recv(1 << 16) == b"", "the fork server answered a grader's request for a grader"
        assert _children_of(shared.process.pid) == before
        assert shared.alive()
    finally:
        shared.close()


# -- Dask ----------------------------------------------------------------------------------------

def _classroom(root: Path) -> Path:
    """Three learners of the softmax exercise: the reference, the stub and a mutant."""
    mutant = next(m for e, m in MUTANTS if e.id == "softmax")
    sources = {"reference": KIT / "solutions" / "softmax" / "softmax.py",
               "stub": KIT / "exercises" / "softmax" / "softmax.py", "mutant": mutant}
    for name, source in sources.items():
        target = root / name / "softmax" / "softmax.py"
        target.parent.mkdir(parents=True)
        target.write_bytes(source.read_bytes())
    return root


def _results(output: Path) -> tuple[list[dict], dict[str, dict]]:
    rows = list(csv.DictReader(output.open(encoding="utf-8")))
    results = {}
    for path in sorted(output.with_name(f"{output.stem}-results").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for exercise in doc["exercises"]:
            exercise.pop("seconds")
        results[path.stem] = doc
    return rows, results


def test_dask_cluster_gives_the_local_gradebook(tmp_path):
    distributed = pytest.importorskip("distributed")
    folder = _classroom(tmp_path / "class")
    local = tmp_path / "local.csv"
    grade_batch(folder, local, ["softmax"], jobs=2, selected=("softmax",))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  worker_class=distributed.Nanny) as cluster:
        on_cluster = tmp_path / "dask.csv"
        streamed = []
        grade_batch(folder, on_cluster, ["softmax"], scheduler=cluster.scheduler_address, selected=("softmax",),
                    progress=lambda row: streamed.append(row.learner))
    assert sorted(streamed) == ["mutant", "reference", "stub"]
    local_rows, local_results = _results(local)
    dask_rows, dask_results = _results(on_cluster)
    assert dask_rows == local_rows
    assert dask_results == local_results
    scores = {r["learner"]: float(r["softmax"]) for r in dask_rows}
    assert scores["reference"] == 10 and scores["stub"] == 0 and scores["mutant"] < 10
    assert all(not r["error"] for r in dask_rows)


def test_the_flakiness_soak_runs_and_other_seeds_draw_other_data(tmp_path):
    """``bench/soak.py`` (20 seeds in full, too long for CI) on one exercise and one seed: the reference
    and its correct variants keep full marks and every mutant still loses points when the hidden tests
    draw other data."""
    env = {**os.environ, "PYTHONPATH": str(KIT)}
    done = subprocess.run([sys.executable, str(KIT / "bench" / "soak.py"), "--seeds", "1", "--exercise", "softmax",
                           "--keep", str(tmp_path)], cwd=KIT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    mutants = [m for e, m in MUTANTS if e.id == "softmax"]
    correct = [v for e, v in VARIANTS if e.id == "softmax"]
    assert (f"soak_variants: {1 + len(correct) + len(mutants)} (1 references, {len(correct)} correct variants, "
            f"{len(mutants)} mutants)") in done.stdout, done.stdout
    assert "soak_changed_verdicts: 0" in done.stdout, done.stdout
    def first_draw(seed: str | None) -> str:
        draw = subprocess.run([sys.executable, "-c", "from grader.testing import seeded_tensor; "
                               "print(seeded_tensor((3,)).tolist())"], cwd=KIT, capture_output=True, text=True,
                              env={**{k: v for k, v in env.items() if k != "DLKATA_SEED"},
                                   **({"DLKATA_SEED": seed} if seed else {})}, timeout=120)
        assert draw.returncode == 0, draw.stderr[-2000:]
        return draw.stdout

    assert first_draw("1") != first_draw(None), "DLKATA_SEED=1 drew the same data as the graded seed"
