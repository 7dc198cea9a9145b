"""Does every attack leave the grade at what honest work gets, with the other exercise still graded right?

The corpus (grader/SECURITY.md is the threat model it checks):

* ``tests/submissions/attacks/<family>__<attack>.py``: code appended to the softmax *stub*, so honest
  work scores 0 and every attack must score exactly 0 on softmax. Families: ``exit``, ``output``,
  ``tamper``, ``backdoor`` (forbidden APIs by another spelling), ``resource``, ``write`` (stray files).
* ``tests/submissions/beside/<honest>__<attack>/``: a submission folder with extra files beside the module
  (conftest.py, test_*.py, ini files, sitecustomize.py, a torch.py, a .pth file, ...). ``<honest>`` says
  what ``softmax/softmax.py`` is when the folder does not provide it (``stub``: the kit's stub, 0;
  ``reference``: the kit's reference, full marks), and the grade must be exactly that. ``X.symlink``
  becomes a symbolic link X to the kit path it contains; ``X.pyc.py`` is compiled into X's
  ``__pycache__`` entry with unchecked-hash invalidation.

Each submission also carries the storage reference, which must still score 100%. Attacks report what
they achieved through files in the test's own folder (they know it from ``__file__``): ``markers/<name>``
when an attack reached its goal, a folder outside /tmp named in ``outside`` (which must stay as the
test left it), a loopback ``port`` on which nothing may connect, and ``graded``, which the test creates
once the grade is over (attacks that act later wait for it; ``result.json`` is written just before, as
``dlkata grade --output`` would, and must not change). Every process a grade starts carries a tag in its
environment, so leftovers are found in /proc wherever they were reparented; none may survive the grade.

An attack whose docstring says "(own grader process)" may take its grader down, so it is graded by a
separate ``python -m`` process that sets ``DLKATA_HARDENING_SACRIFICE`` (the attack does nothing without
it); that process must exit cleanly with the same verdicts.

The static escape-hatch scan (``scan.escape_hatches``: ``ctypes``, frames, computed ``getattr``...) would
refuse most attacks before they run, so each attack is graded with it switched off, to prove the layer
it targets (sandbox, wire, runtime guard) holds on its own; ``tests/test_scan.py`` covers the scan. An
attack whose docstring says "(stopped by the scan)" is one only the scan stops, graded with it on.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import py_compile
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from grader import catalog, sandbox, scan
from grader.results import GradeResult
from grader.runner import grade_exercise, grade_submission
from tests.conftest import KIT, open_to_sandboxes

CORPUS = KIT / "tests" / "submissions"
ATTACKS = sorted((CORPUS / "attacks").glob("*__*.py"))
BESIDE = sorted(p for p in (CORPUS / "beside").iterdir() if p.is_dir() and "__" in p.name)
STUB = KIT / "exercises" / "softmax" / "softmax.py"
REFERENCE = KIT / "solutions" / "softmax" / "softmax.py"
STORAGE = KIT / "solutions" / "storage" / "storage.py"
MIXED = KIT / "tests" / "mutants" / "softmax" / "no_max_shift.py"
SENTINEL = "DLKATA-FAKE"
TAG = "DLKATA_HARDENING_TAG"
OWN_PROCESS = "(own grader process)"
SCAN_ONLY = "(stopped by the scan)"
ACTS_LATER = "(acts after the grade)"
PROBE_TIMEOUT_S = "2"
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")  # the crafted replies
KIT_RESULT_FILES = ("result.json", "report.xml")
ESCAPE_HATCHES = scan.escape_hatches


def exercises():
    return catalog.get("softmax"), catalog.get("storage")


# -- the module's own fork server: tagged, with its stdout/stderr in a file ----------------------------

@pytest.fixture(scope="module")
def grading(tmp_path_factory):
    """Environment for the whole module: the probe timeout, a tag every grading process inherits, and a
    fork server of our own whose stdout/stderr (the grader's, inherited) go to a log the tests read."""
    token = uuid.uuid4().hex
    log = tmp_path_factory.mktemp("fork-server") / "stdio.log"
    log.touch()
    stages = open_to_sandboxes(tmp_path_factory.mktemp("stages"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLKATA_PROBE_TIMEOUT_S", PROBE_TIMEOUT_S)
        mp.setenv(TAG, token)
        mp.setenv(sandbox.WRITABLE_ENV, str(stages))  # the attacks' side channels: see Stage
        state = {"token": token, "log": log, "pid": None, "stages": stages}
        _own_fork_server(state)
        yield state
        _stop_fork_server()


def _stop_fork_server() -> None:
    server = sandbox._server
    sandbox._server = None
    if server is None:
        return
    server._control.close()  # the fork server kills its orphans and exits when the grader goes away
    try:
        server._process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server._process.kill()
        server._process.wait()


def _own_fork_server(state: dict) -> None:
    """(Re)start the fork server unless ours is still the one in use (an attack may have killed it and
    the grader started another, which writes to the test's captured output instead of our log)."""
    server = sandbox._server
    if server is not None and server._process.poll() is None and server._process.pid == state["pid"]:
        return
    _stop_fork_server()
    saved = os.dup(1), os.dup(2)
    fd = os.open(state["log"], os.O_WRONLY | os.O_APPEND)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        state["pid"] = sandbox.fork_server()._process.pid
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


# -- observing what a grade left behind -----------------------------------------------------------------

def tagged_processes(token: str) -> dict[int, str]:
    """pid -> command line of every live process started with our tag in its environment."""
    needle = f"{TAG}={token}".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle not in fh.read():
                    continue
            with open(f"/proc/{entry}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue  # a zombie holds no resources and runs nothing
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                found[int(entry)] = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
        except OSError:
            pass
    return found


def leftovers(token: str, before: set[int], wait_s: float = 3.0) -> dict[int, str]:
    """Tagged processes that were not there before the grade, except the fork server in use, once the
    ones that are merely dying have had ``wait_s`` to go."""
    deadline = time.monotonic() + wait_s
    while True:
        keep = {sandbox._server._process.pid} if sandbox._server is not None else set()
        left = {p: c for p, c in tagged_processes(token).items() if p not in before and p not in keep}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def kill_all(token: str, before: set[int]) -> None:
    """SIGKILL, by pid, what a successful attack left running (it would keep re-forking otherwise)."""
    keep = {sandbox._server._process.pid} if sandbox._server is not None else set()
    for _ in range(50):
        left = [p for p in tagged_processes(token) if p not in before and p not in keep]
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


class Listener:
    """A TCP listener on the machine's loopback: a sandbox has its own network namespace, so nothing it
    does should ever reach this socket."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.peers: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    data = conn.recv(256)
                except OSError:
                    data = b""
            self.peers.append(f"{peer[0]}:{peer[1]} sent {data!r}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class Stage:
    """A test's private folder: the submission, the attacks' side channels, and what is checked after.
    Sandboxes may write nowhere but their private working directory; the stages are the exception the
    kit's own tests make (``DLKATA_SANDBOX_WRITABLE``), so that an attack can leave evidence of success."""

    def __init__(self, state: dict, name: str) -> None:
        self.root = tmp_path = state["stages"] / name
        tmp_path.mkdir(mode=0o777)
        tmp_path.chmod(0o777)  # whatever the umask: the sandbox runs as another user
        self.submission = tmp_path / "submission"
        (tmp_path / "markers").mkdir(mode=0o777)
        (tmp_path / "markers").chmod(0o777)
        self.outside = Path.home() / ".cache" / "dlkata-hardening" / uuid.uuid4().hex
        assert not str(self.outside).startswith(("/tmp", os.environ.get("TMPDIR", "/tmp"))), self.outside
        self.outside.mkdir(parents=True)
        self.victim = self.outside / "victim.txt"
        self.victim.write_text("victim\n")
        os.chmod(self.victim, 0o644)
        self.victim_stat = self.victim.stat()
        (tmp_path / "outside").write_text(str(self.outside))
        self.listener = Listener()
        (tmp_path / "port").write_text(str(self.listener.port))
        self.kit_files = {p.name for p in KIT.iterdir()}  # result files an attack may try to plant there

    def finish(self, result_json: str, acts_later: bool) -> list[str]:
        """Declare the grade over, give late actors time, and list everything that went wrong."""
        problems = []
        (self.root / "result.json").write_text(result_json)
        (self.root / "graded").touch()
        time.sleep(3.0 if acts_later else 0.3)
        marks = sorted((self.root / "markers").iterdir())
        problems += [f"attack reached its goal ({m.name}): {m.read_text().strip()}" for m in marks]
        if (self.root / "result.json").read_text() != result_json:
            problems.append("result.json was rewritten after the grade")
        stray = sorted(p.name for p in self.outside.iterdir() if p != self.victim)
        if stray:
            problems.append(f"files appeared outside /tmp ({self.outside}): {stray}")
        if not self.victim.exists():
            problems.append(f"a file outside /tmp was deleted ({self.victim})")
        else:
            now = self.victim.stat()
            if (self.victim.read_text() != "victim\n" or now.st_mode != self.victim_stat.st_mode
                    or now.st_mtime != self.victim_stat.st_mtime):
                problems.append(f"a file outside /tmp was changed ({self.victim}: mode {oct(now.st_mode)}, "
                                f"{now.st_size} bytes)")
        new_in_kit = sorted(n for n in KIT_RESULT_FILES if n not in self.kit_files and (KIT / n).exists())
        if new_in_kit:
            problems.append(f"files appeared in the kit root: {new_in_kit}")
        filled = self.root / "fill"
        if filled.exists():
            size = sum(p.stat().st_size for p in filled.iterdir())
            problems.append(f"{size >> 20} MiB written outside the sandbox's working directory survive the grade")
        if self.listener.peers:
            problems.append(f"network connections reached the machine's loopback: {self.listener.peers}")
        return problems

    def close(self) -> None:
        self.listener.close()
        shutil.rmtree(self.outside, ignore_errors=True)
        shutil.rmtree(self.root / "fill", ignore_errors=True)
        for name in KIT_RESULT_FILES:
            if name not in self.kit_files and (KIT / name).exists():
                (KIT / name).unlink()


# -- grading ------------------------------------------------------------------------------------------------

GRADE_IN_OWN_PROCESS = """
import json, sys
from pathlib import Path
from grader import catalog, scan
from grader.runner import grade_submission
if sys.argv[3] == "no-escape-scan":
    scan.escape_hatches = lambda *args, **kwargs: []
result = grade_submission(Path(sys.argv[1]), (catalog.get("softmax"), catalog.get("storage")))
Path(sys.argv[2]).write_text(result.to_json())
"""


def grade_in_own_process(stage: Stage, state: dict) -> tuple[GradeResult | None, list[str]]:
    out = stage.root / "own-process-result.json"
    env = {**os.environ, "DLKATA_HARDENING_SACRIFICE": "1", "DLKATA_PROBE_TIMEOUT_S": PROBE_TIMEOUT_S,
           TAG: state["token"]}
    scanned = "escape-scan" if scan.escape_hatches is ESCAPE_HATCHES else "no-escape-scan"
    done = subprocess.run([sys.executable, "-c", GRADE_IN_OWN_PROCESS, str(stage.submission), str(out), scanned],
                          cwd=KIT, env=env, capture_output=True, text=True, timeout=600, start_new_session=True)
    problems = []
    if done.returncode != 0:
        problems.append(f"the grader process died or failed (exit status {done.returncode}): "
                        f"{done.stderr.strip()[-600:]}")
    if SENTINEL in done.stdout + done.stderr:
        problems.append("the submission's output reached the grader's stdout/stderr")
    if not out.exists():
        return None, problems
    return GradeResult.from_dict(json.loads(out.read_text())), problems


def check_grade(stage: Stage, state: dict, honest_softmax: float, *, own_process: bool = False,
                acts_later: bool = False) -> None:
    _own_fork_server(state)
    log_offset = state["log"].stat().st_size
    before = set(tagged_processes(state["token"]))
    problems: list[str] = []
    started = time.monotonic()
    try:
        if own_process:
            result, problems = grade_in_own_process(stage, state)
        else:
            try:
                result = grade_submission(stage.submission, exercises())
            except Exception as exc:  # the grader itself failed: no grade at all
                result = None
                problems.append(f"the grader raised {type(exc).__name__}: {exc}")
        seconds = time.monotonic() - started
        left = leftovers(state["token"], before)
        if left:
            problems.append(f"processes outlived the grade: {left}")
        problems += stage.finish(result.to_json() if result else "{}", acts_later)
        with open(state["log"], errors="replace") as fh:
            fh.seek(log_offset)
            if SENTINEL in fh.read():
                problems.append("the submission's output reached the grader's stdout/stderr")
        if seconds > 300:
            problems.append(f"the grade took {seconds:.0f} s")
        if result is not None:
            softmax, storage = result.exercises
            if softmax.score != honest_softmax:
                passed = [t.name for t in softmax.tests if t.outcome == "passed"]
                problems.append(f"softmax scored {softmax.score:g}/{softmax.max_score:g} where honest work scores "
                                f"{honest_softmax:g} (passed: {passed}; {softmax.outcome}: {softmax.message[:200]})")
            if storage.score != storage.max_score:
                problems.append(f"storage (the reference, beside the attack) scored {storage.score:g}/"
                                f"{storage.max_score:g}: {[(t.name, t.outcome, t.message[:120]) for t in storage.tests if t.outcome != 'passed']}")
    finally:
        kill_all(state["token"], before)
        stage.close()
    assert not problems, "\n".join(problems)


def docstring(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc, f"{path.name} needs a module docstring naming its attack"
    return doc


# -- the corpus -------------------------------------------------------------------------------------------

def test_corpus_is_large_and_named():
    families = {a.stem.split("__")[0] for a in ATTACKS}
    assert len(ATTACKS) + len(BESIDE) >= 30
    assert families >= {"exit", "output", "tamper", "backdoor", "resource", "write"}, families
    for attack in ATTACKS:
        docstring(attack)
    for folder in BESIDE:
        assert folder.name.split("__")[0] in ("stub", "reference"), folder.name


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.stem for a in ATTACKS])
def test_attack_scores_what_honest_work_scores(attack, grading, monkeypatch):
    doc = docstring(attack)
    if SCAN_ONLY not in doc:
        monkeypatch.setattr(scan, "escape_hatches", lambda *args, **kwargs: [])
    source = STUB.read_text(encoding="utf-8") + "\n\n# -- the attack --\n" + attack.read_text(encoding="utf-8")
    uses = scan.forbidden_uses(source, catalog.get("softmax").forbidden)
    assert not uses, f"{attack.name} is caught by the static scan ({uses}), so it never runs: respell it"
    stage = Stage(grading, attack.stem)
    (stage.submission / "softmax").mkdir(parents=True)
    (stage.submission / "softmax" / "softmax.py").write_text(source, encoding="utf-8")
    (stage.submission / "storage").mkdir()
    shutil.copy(STORAGE, stage.submission / "storage" / "storage.py")
    check_grade(stage, grading, 0.0, own_process=OWN_PROCESS in doc, acts_later=ACTS_LATER in doc)


def materialise(folder: Path, target: Path) -> None:
    """Copy a beside/ folder into a submission, making its links and cached bytecode (see the docstring)."""
    shutil.copytree(folder, target, symlinks=True)
    honest = STUB if folder.name.startswith("stub__") else REFERENCE
    for placeholder in sorted(target.rglob("*.symlink")):
        link = placeholder.with_suffix("")
        link.symlink_to(KIT / placeholder.read_text().strip())
        placeholder.unlink()
    for payload in sorted(target.rglob("*.pyc.py")):
        source = payload.with_name(payload.name[: -len(".pyc.py")] + ".py")
        py_compile.compile(str(payload), cfile=importlib.util.cache_from_source(str(source)), doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    module = target / "softmax" / "softmax.py"
    if not module.exists() and not module.is_symlink():
        shutil.copy(honest, module)
    (target / "storage").mkdir(exist_ok=True)
    shutil.copy(STORAGE, target / "storage" / "storage.py")


@pytest.mark.parametrize("folder", BESIDE, ids=[f.name for f in BESIDE])
def test_files_beside_the_module_change_nothing(folder, grading):
    stage = Stage(grading, folder.name)
    materialise(folder, stage.submission)
    honest = 0.0 if folder.name.startswith("stub__") else catalog.get("softmax").points
    check_grade(stage, grading, honest)


# -- determinism ------------------------------------------------------------------------------------------

def test_grading_is_deterministic(tmp_path, grading):
    """A submission that passes some tests and fails others (a mutant: no max shift) graded 10 times:
    the same outcome, points and message for every test, every time."""
    _own_fork_server(grading)
    root = tmp_path / "submission"
    (root / "softmax").mkdir(parents=True)
    shutil.copy(MIXED, root / "softmax" / "softmax.py")
    runs = []
    for _ in range(10):
        result = grade_exercise(catalog.get("softmax"), root)
        runs.append([(t.name, t.outcome, t.points, t.message) for t in result.tests])
    outcomes = {o for _, o, _, _ in runs[0]}
    assert "passed" in outcomes and outcomes - {"passed"}, f"not a mixed submission: {outcomes}"
    for i, run in enumerate(runs[1:], 2):
        assert [t[0] for t in run] == [t[0] for t in runs[0]], f"run {i} ran other tests than run 1"
        differ = {a[0]: (a[1:], b[1:]) for a, b in zip(runs[0], run) if a != b}
        assert not differ, f"run {i} differs from run 1 in {sorted(differ)}: {differ}"
