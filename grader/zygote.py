"""The fork server: a warm process that has imported torch and the test helpers, and forks one sandbox
per test on request.

Forking is ~3 ms (~9 ms without huge pages) where starting Python and importing torch is seconds. It
is safe only because this process never runs a multi-threaded op: a child forked after its parent
entered an OpenMP region hangs in libgomp on its next parallel op. The zygote only imports modules and
forks.

Each sandbox gets a fresh working directory made here, and removed here once the sandbox is reaped (off
the grader's path). Protocol on a control socket (JSON, never pickle: nothing a peer sends can run code
here; graders are the only peers; each may send several spawns before reading their replies):
  ["spawn", spec] + the sandbox's socket as an SCM_RIGHTS fd  ->  ["pid", pid]
  ["release", pid]    (no reply: the grader has SIGKILLed it)  ->  reaped, orphans killed, when idle
  ["reap", pid]                                               ->  ["status", exit code or null]
  ["sweep"]                                                   ->  ["swept", orphans killed]
  ["isolation"]                                               ->  ["isolation", [what a sandbox gets]]
  ["client"] + a new control socket as an SCM_RIGHTS fd       ->  (no reply) one more grader served
  ["grader", spec] + its request and reply pipes as fds       ->  ["pid", pid] + a pidfd of that grader
The first control socket is the launcher's: ``["client"]`` and ``["grader"]`` are honoured only there, and
the fork server exits when it closes. A batch shares one fork server among its graders (``Shared``):
warming one costs ~7 CPU-s, which each grader would otherwise pay again on the same cores. It also forks
the batch's graders themselves (``["grader"]``: trusted code, the batch's, never a submission's), so a
new grader starts in ~10 ms with torch, pytest and hypothesis imported instead of importing them (~1.3
CPU-s) on the cores the other graders are using. A client that goes away loses its live sandboxes (killed
like orphans); the others go on.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from grader.catalog import Exercise
    from grader.guard import Guard

PRELOAD = ["torch", "numpy", "pytest", "hypothesis", "grader.sandbox", "grader.testing", "grader.probes"]
# Then, while idle (``Later``), the fork server warms the exercises WARM_ENV names ("softmax,newton"), or
# all of them.
WARM_ENV = "DLKATA_WARM_EXERCISES"
MAX_MESSAGE = 1 << 20
SPARES_ENV = "DLKATA_SPARE_SANDBOXES"  # spares a grader keeps (sandbox.SPARES; a batch's workers: "0")


def launch(exercises: tuple[str, ...] = ()) -> tuple[subprocess.Popen, socket.socket]:
    """Start a fork server warmed for ``exercises`` (all if empty; it serves any of them either way);
    returns its process and the grader's end of its control socket. Needs no torch, so a grader can call
    it before importing torch itself and both processes import at once."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)  # one message per request
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), WARM_ENV: ",".join(exercises)}
    quiet = None if os.environ.get("DLKATA_SANDBOX_STDERR") else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, "-m", "grader.zygote", str(theirs.fileno())],
                               pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL,
                               stdout=quiet, stderr=quiet,  # never the grader's stdout (a fake result)
                               start_new_session=True)  # no SIGINT from a terminal or kernel
    theirs.close()
    return process, ours


class Shared:
    """A fork server that several grader processes use at once (a batch's workers, which it forks with
    ``fork_grader``; each gets a control socket of its own)."""

    def __init__(self, exercises: tuple[str, ...] = ()) -> None:
        self.process, self._launcher = launch(exercises)
        self.pidfd = os.pidfd_open(self.process.pid)  # lets a client that did not start it see it die
        self._lock = threading.Lock()  # one request and its reply at a time on the launcher's socket

    def alive(self) -> bool:
        return self.process.poll() is None

    def client(self) -> socket.socket:
        """A new control socket on this fork server, for one grader process to inherit."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            socket.send_fds(self._launcher, [b'["client"]'], [ours.fileno()])
        finally:
            ours.close()
        return theirs

    def fork_grader(self, exercises: tuple[str, ...], env: dict[str, str], requests: int, replies: int
                    ) -> tuple[int, int]:
        """Fork a batch grader (``grader.batch.worker_main``) that reads requests from and writes replies to
        these pipe ends, with ``env`` added to its environment; returns its pid and a pidfd of it."""
        spec = {"exercises": list(exercises), "env": env}
        with self._lock:
            socket.send_fds(self._launcher, [json.dumps(["grader", spec]).encode()], [requests, replies])
            data, fds, _flags, _addr = socket.recv_fds(self._launcher, MAX_MESSAGE, 1)
        if not data or not fds:
            raise OSError("the fork server could not start a grader (it is no longer running)")
        return json.loads(data)[1], fds[0]

    def reap(self, pid: int) -> int | None:
        """Wait for a grader ``fork_grader`` started, once it has exited or been killed: its exit code."""
        with self._lock:
            self._launcher.sendall(json.dumps(["reap", pid]).encode())
            data = self._launcher.recv(MAX_MESSAGE)
        return json.loads(data)[1] if data else None

    def close(self) -> None:
        self._launcher.close()  # EOF: it kills what is left and exits
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.pidfd)


class Peer:
    """``Popen.poll`` for a fork server another process started: done once its pidfd is readable."""

    def __init__(self, pidfd: int) -> None:
        self.pidfd = pidfd

    def poll(self) -> int | None:
        return 0 if select.select([self.pidfd], [], [], 0)[0] else None


Connection = tuple[subprocess.Popen | Peer, socket.socket]  # a fork server's process and a control socket on it
_early: Connection | None = None


def start_early(exercises: tuple[str, ...] = ()) -> None:
    """Launch this process's fork server now (``dlkata grade``: before it imports torch), warmed for
    ``exercises`` (all if empty); the grader's ``ForkServer`` adopts it on first use. A batch grader has
    one already: the fork server that forked it."""
    global _early
    if _early is None:
        _early = launch(exercises)


def adopt() -> Connection | None:
    """The fork server ``start_early`` launched, if it is still running (once)."""
    global _early
    early, _early = _early, None
    if early is not None and early[0].poll() is not None:
        early[1].close()
        return None
    return early


def _exit_code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


_workdirs: dict[int, str] = {}  # sandbox pid -> its working directory, removed once it is reaped


def _reap(pid: int, wait_s: float = 3.0) -> int | None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            workdir = _workdirs.pop(pid, None)  # None: an orphan, not a sandbox
            if workdir:
                shutil.rmtree(workdir, ignore_errors=True)  # here, off the grader's path
            return _exit_code(status)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.005)


def _drop_inherited(controls: list[socket.socket], netns: dict[socket.socket, int | None],
                    own: int | None = None) -> None:
    """In a child just forked: close every control socket of this server, and every grader's network
    namespace but ``own``."""
    for control in controls:
        control.close()
    for other in netns.values():
        if other is not None and other != own:
            os.close(other)


def _spawn(controls: list[socket.socket], netns: dict[socket.socket, int | None], spec: dict, fd: int,
           guard: Guard, own: int | None) -> int:
    spec = {**spec, "workdir": tempfile.mkdtemp(prefix="dlkata-sandbox-")}  # its private working directory
    pid = os.fork()
    if pid == 0:  # the sandbox
        try:
            _drop_inherited(controls, netns, own)  # a sandbox must never speak for a grader
            from multiprocessing.connection import Connection

            from grader.sandbox import serve

            serve(Connection(fd), spec, guard, own)
        finally:
            os._exit(70)
    os.close(fd)
    _workdirs[pid] = spec["workdir"]
    return pid


def _fork_grader(server: _Server, spec: dict, requests: int, replies: int) -> int:
    """Fork a batch grader: it gets a control socket of its own on this server (and a pidfd of it, to see
    it go), keeps none of the others, and runs ``grader.batch.worker_main`` until its requests end."""
    for exercise_id in spec["exercises"]:  # what it would import itself (its preload), imported once here
        server.later.exercise(exercise_id)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pidfd = os.pidfd_open(os.getpid())
    pid = os.fork()
    if pid == 0:  # the grader
        code = 70
        try:
            ours.close()
            _drop_inherited(server.clients, server.netns)
            os.environ.update(spec["env"])
            global _early
            _early = (Peer(pidfd), theirs)  # what its ForkServer adopts
            from grader.batch import worker_main

            code = worker_main(requests, replies, spec["exercises"])
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    for fd in (pidfd, requests, replies):
        os.close(fd)
    theirs.close()
    server.clients.append(ours)
    server.graders.add(pid)
    return pid


def warm_up() -> Later:
    """Import what every sandbox needs (torch, the test helpers, the guard's wrappers), with ops far too
    small to start a thread pool; return the rest of the warm-up, which the server does while idle."""
    for name in PRELOAD:
        importlib.import_module(name)
    import torch

    from grader.catalog import catalog
    from grader.guard import Guard

    Guard(forbidden_aten=("aten::_softmax",)).guarded(lambda: torch.zeros(2).add(1).sum())()
    rehearse_probe()
    import gc

    gc.collect()
    gc.freeze()  # a sandbox's garbage collections skip (and so do not copy-on-write) what it inherited
    wanted = set(filter(None, os.environ.get(WARM_ENV, "").split(",")))
    return Later([e for e in catalog() if e.id in wanted] or catalog())  # unknown ids: the CLI says so


def rehearse_probe() -> None:
    """Unpickle tensor arguments and ``wire.encode`` a result once, as a probe does: the first time in a
    process initialises lazily (~4 ms of a first probe's ~9). Done here, every sandbox inherits it; done
    again in a spare while it waits, its first probe also skips the copy-on-write faults (~1 ms)."""
    import pickle

    import torch

    from grader import wire

    tensors = [torch.zeros(2, dtype=dtype) for dtype in (torch.float32, torch.float64, torch.int64, torch.bool)]
    value = pickle.loads(pickle.dumps((("file", "probe"), (tensors, 1.0), {"key": None})))
    wire.encode({"ok": True, "value": value})


MADV_HUGEPAGE, MADV_COLLAPSE = 14, 25
HUGE_PAGE = 2 << 20
COLLAPSE_STEP = 16 << 20  # ~40 ms of MADV_COLLAPSE: how long one idle step can keep a spawn waiting


class Later:
    """The warm-up a grader need not wait for, per exercise (in grading order): its ``preload`` (what
    torch loads lazily on first use, in every sandbox that needs it: torch._dynamo ~1.2 s, forward-mode
    AD's decompositions ~0.1 s), its forbidden names, hidden test file and guard; then huge pages. The
    server takes one step whenever no request is waiting, so this overlaps the grader's own imports and
    tests (~2.5 s of a full grade's start); a spawn first finishes its own exercise's part."""

    def __init__(self, exercises: list[Exercise]) -> None:
        self._exercises = {e.id: e for e in exercises}
        self._collapse: list[tuple[int, int]] | None = None  # listed once every exercise is warm

    @property
    def pending(self) -> bool:
        return bool(self._exercises) or self._collapse != []

    def exercise(self, exercise_id: str) -> None:
        """Before forking a sandbox of ``exercise_id`` (any catalog exercise): warm it if not yet."""
        from grader.catalog import catalog

        if exercise_id not in _warmed:
            self._exercises.pop(exercise_id, None)
            exercise = next((e for e in catalog() if e.id == exercise_id), None)
            if exercise is not None:
                _warm(exercise)

    def step(self) -> None:
        if self._exercises:
            _warm(self._exercises.pop(next(iter(self._exercises))))
        elif self._collapse is None:
            self._collapse = _huge_page_steps()
        elif self._collapse:
            _collapse(*self._collapse.pop(0))


def _huge_page_steps() -> list[tuple[int, int]]:
    """This process's heap (torch and friends: ~230 MB), in steps of ``COLLAPSE_STEP``, aligned to huge
    pages. Backed by 2 MiB pages where the kernel can (Linux 6.1+, MADV_COLLAPSE), fork copies a few
    hundred page-table entries instead of ~60k: about 9 ms down to 3 ms a sandbox. A child's first write
    to a huge page splits it and copies 4 KiB, as before."""
    with open("/proc/self/maps") as maps:
        regions = [line.split() for line in maps]
    steps = []
    for fields in regions:
        if fields[1] != "rw-p" or (len(fields) > 5 and fields[5] != "[heap]"):
            continue  # private anonymous memory only: not files, the stack, or the vdso
        low, high = (int(x, 16) for x in fields[0].split("-"))
        low = -(-low // HUGE_PAGE) * HUGE_PAGE
        high = high // HUGE_PAGE * HUGE_PAGE
        steps += [(start, min(start + COLLAPSE_STEP, high)) for start in range(low, high, COLLAPSE_STEP)]
    return steps


def _collapse(low: int, high: int) -> None:
    """Best effort: an older kernel refuses, and nothing changes."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.madvise(low, high - low, MADV_HUGEPAGE)
    libc.madvise(low, high - low, MADV_COLLAPSE)


_prepared: dict[str, int | None] = {}  # forbidden name -> None, test file -> its mtime when loaded
_guards: dict[tuple[tuple[str, ...], tuple[str, ...]], Guard] = {}
_warmed: set[str] = set()


def prepare(spec: dict) -> Guard:
    """Before forking a sandbox: do, once per fork server, what it would otherwise do for itself every
    time (import the modules of its forbidden names and the test files its probes live in, ~10-30 ms a
    test; make its guard's wrappers, ~8 ms), and return that guard, not yet installed."""
    with _one_thread():
        for name in spec.get("forbidden", ()):
            _resolve(name)
        for file in spec.get("probe_files", ()):
            _load(file)
        return _guard(tuple(spec.get("forbidden", ())), tuple(spec.get("forbidden_aten", ())))


def _warm(exercise: Exercise) -> None:
    """The exercise's ``preload``, then what ``prepare`` would do at its tests' first spawn."""
    import gc

    _warmed.add(exercise.id)
    with _one_thread():
        for name in exercise.preload:
            importlib.import_module(name)
    prepare({"forbidden": exercise.forbidden, "forbidden_aten": exercise.forbidden_aten,
             "probe_files": [str(exercise.hidden_tests)]})
    gc.freeze()  # what that made is inherited too


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Test files are trusted (the kit's); they load with one intra-op thread, so module-level tensor code
    cannot start a thread pool here."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _resolve(name: str) -> None:
    """Import what a forbidden name reaches (torch loads many submodules lazily): the guard resolves it in
    every sandbox."""
    from grader.guard import resolve

    if name not in _prepared:
        _prepared[name] = None
        resolve(name)


def _load(file: str) -> None:
    """Import a test file (again if it changed). One that fails to load is left to the sandbox, which
    reports it."""
    from grader import sandbox

    try:
        stamp = os.stat(file).st_mtime_ns
    except OSError:
        return
    if _prepared.get(file) != stamp:
        _prepared[file] = stamp
        sandbox._probe_modules.pop(file, None)
        try:
            sandbox._probe_function(file, None)
        except BaseException:
            sandbox._probe_modules.pop(file, None)


def _guard(forbidden: tuple[str, ...], forbidden_aten: tuple[str, ...]) -> Guard:
    from grader.guard import Guard

    key = (forbidden, forbidden_aten)
    if key not in _guards:
        _guards[key] = Guard(*key)
        _guards[key].prepare()
    return _guards[key]


PR_SET_CHILD_SUBREAPER = 36


def _children() -> list[int]:
    pids = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as fh:
                pids += [int(p) for p in fh.read().split()]
        except OSError:
            pass
    return pids


def _kill_orphans(live: set[int]) -> int:
    """Descendants of dead sandboxes (double-forked, setsid'd) were reparented here: kill them all, again
    and again, since killing one orphans its own children to us in turn. Returns how many."""
    killed = 0
    for _ in range(1000):
        orphans = _signal_orphans(live)
        if not orphans:
            return killed
        killed += len(orphans)
        for pid in orphans:
            _reap(pid, 1.0)
    return killed


def _signal_orphans(live: set[int]) -> list[int]:
    """SIGKILL every child that is not a live sandbox, reaping those already dead; returns them all."""
    orphans = [pid for pid in _children() if pid not in live]
    for pid in orphans:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, 9)
            except OSError:
                pass
        _reap(pid, 0.0)
    return orphans


class _Server:
    """The request loop over every client's control socket."""

    def __init__(self, launcher: socket.socket, later: Later) -> None:
        self.launcher = launcher
        self.later = later
        self.clients = [launcher]
        self.live: dict[int, socket.socket] = {}  # sandbox pid -> the client that spawned it
        self.graders: set[int] = set()  # the batch graders forked here (children, never orphans)
        self.netns: dict[socket.socket, int | None] = {}  # client -> its sandboxes' network namespace
        self.released = False  # released sandboxes (or what they started) may still be running

    def run(self) -> None:
        """Serve until the launcher goes away."""
        while True:
            wait = 0.0 if self.later.pending else 0.005 if self.released else None
            ready = select.select(self.clients, [], [], wait)[0]
            if not ready:
                # idle: released sandboxes are killed and reaped while the graders run their tests,
                # without ever making a request wait for a dying process
                if self.released:
                    self.released = bool(_signal_orphans(self.kept()))
                if self.later.pending:
                    self.later.step()
                continue
            for client in ready:
                if not self.answer(client):
                    if client is self.launcher:
                        return
                    self.drop(client)

    def drop(self, client: socket.socket) -> None:
        """A grader went away (done, or killed mid-test): its live sandboxes become orphans to kill."""
        self.clients.remove(client)
        client.close()
        netns = self.netns.pop(client, None)
        if netns is not None:
            os.close(netns)  # the namespace goes with the last sandbox still in it
        self.live = {pid: owner for pid, owner in self.live.items() if owner is not client}
        self.released = True

    def answer(self, client: socket.socket) -> bool:
        """Serve one request; False once the client has gone (or does not speak the protocol)."""
        try:
            data, fds, _flags, _addr = socket.recv_fds(client, MAX_MESSAGE, 2)  # two: a grader's pipes
            if not data:
                return False
            request = json.loads(data)
            kind = request[0]
            if kind == "client" and client is self.launcher:
                self.clients.append(socket.socket(fileno=fds[0]))
                return True
            if kind == "grader" and client is self.launcher:
                pid = _fork_grader(self, request[1], *fds)
                grader = os.pidfd_open(pid)
                try:
                    socket.send_fds(client, [json.dumps(["pid", pid]).encode()], [grader])
                finally:
                    os.close(grader)
                return True
            reply = self.reply(client, kind, request, fds)
            if reply is not None:
                client.sendall(json.dumps(reply).encode())
            return True
        except (OSError, ValueError, TypeError, IndexError):
            return False

    def reply(self, client: socket.socket, kind: str, request: list, fds: list[int]) -> list | None:
        if kind == "spawn":
            self.later.exercise(request[1]["module_name"])
            guard = prepare(request[1])
            if client not in self.netns:
                from grader.isolation import network_namespace

                self.netns[client] = network_namespace()
            pid = _spawn(self.clients, self.netns, request[1], fds[0], guard, self.netns[client])
            self.live[pid] = client
            return ["pid", pid]
        if kind == "release":
            self.live.pop(request[1], None)
            self.released = True
            return None
        if kind == "isolation":
            from grader.isolation import available_isolation

            return ["isolation", available_isolation()]
        if kind == "sweep":
            self.released = False
            return ["swept", _kill_orphans(self.kept())]
        if kind != "reap":
            raise ValueError(kind)
        self.live.pop(request[1], None)
        self.graders.discard(request[1])
        status = _reap(request[1])
        _kill_orphans(self.kept())
        return ["status", status]

    def kept(self) -> set[int]:
        """The children that are not orphans: live sandboxes and the batch's graders."""
        return set(self.live) | self.graders


def main(control_fd: int) -> None:
    import ctypes

    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans of sandboxes come to us
    later = warm_up()
    _Server(socket.socket(fileno=control_fd), later).run()
    _kill_orphans(set())
    os._exit(0)


if __name__ == "__main__":
    from grader import zygote  # run as that module, not a copy named __main__: its graders adopt it

    zygote.main(int(sys.argv[1]))
