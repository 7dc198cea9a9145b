"""Run probes against a submission in a separate process.

One sandbox serves one test: a child forked from a warm fork server (which imported torch and the test
helpers but never ran a multi-threaded op, so forking it is safe) imports the submission once and runs
each probe the test sends. The child returns plain data through ``wire``; learner exceptions come back
as text. A probe that exceeds the exercise's timeout, or a child that dies, fails the test with outcome
``timeout`` or ``crashed``, and every later probe of that test fails the same way at once (so a property
test that shrinks does not wait out the timeout again and again).

``inline=True`` runs the probes in this process instead (same guard, same wire round trip): the learner's
quick ``check`` and plain ``pytest exercises/<id>``, where a fast start matters more than isolation.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import pickle
import signal
import socket
import struct
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path
from typing import Any, Callable

from grader import wire, zygote
from grader.errors import (ForbiddenCall, ProbeCrashed, ProbeFailure, ProbeTimeout, SubmissionRaised,
                           UnsupportedResult)
from grader.guard import ForbiddenAPIError, Guard
from grader.catalog import kit_root
from grader.isolation import Limits, apply_limits, drop_privileges, install_audit_hook, private_namespaces



IMPORT_ALLOWANCE_S = 10.0
SPARES = 2  # sandboxes forked ahead of the tests that will take them (zygote.SPARES_ENV overrides)
WRITABLE_ENV = "DLKATA_SANDBOX_WRITABLE"  # more folders sandboxes may write (os.pathsep-separated): the
# kit's own tests watch what a sandbox does through them; a class grade never needs it


class _Child:
    """A sandbox the fork server forked (or is forking) for one spec."""

    def __init__(self, key: str, sock: socket.socket) -> None:
        self.key, self.sock = key, sock
        self.pid: int | None = None  # until the fork server's reply is read


def _freshness_key(spec: dict) -> str:
    """The spec and the content of every file a sandbox reads at start: a spare serves only a spec that
    still reads the same files (a save between two checks makes it stale)."""
    digests = []
    for file in (spec["module_path"], *spec["probe_files"]):
        try:
            digests.append(hashlib.blake2b(Path(file).read_bytes(), digest_size=16).hexdigest())
        except OSError:
            digests.append(None)
    return json.dumps([spec, digests], sort_keys=True)


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # its group (it called setsid), then itself if it had not yet
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class ForkServer:
    """The grader's handle on ``grader.zygote``, started once per grader process.

    Each spawn also tops up ``SPARES`` spares with the same spec, forked while the grader runs its tests:
    the next tests' sandboxes have then already isolated themselves and imported the submission (most of
    a sandbox's cost, taken off the grader's path). Two, because one is often not ready after a short
    test: a full grade's first probes waited ~2-4 ms less each, and the grade took 20.2 s against 21.4 s
    (5 interleaved runs each), spread 19.9-20.6 against 18.1-24.9. Spares whose spec or files changed are
    discarded. They pay off only on a core the grader leaves idle: a batch running a grader per core
    turns them off."""

    def __init__(self, connection: zygote.Connection | None = None) -> None:
        """``connection``: a fork server to use; default: this process's own."""
        self._process, self._control = connection or zygote.adopt() or zygote.launch()
        self._unanswered: list[_Child] = []  # spawn requests whose pid reply is not read yet, in order
        self._ready: list[_Child] = []  # spares, oldest first
        self._spares = int(os.environ.get(zygote.SPARES_ENV, SPARES))
        self._isolation: list[str] | None = None

    def alive(self) -> bool:
        return self._process.poll() is None

    def _send(self, request: list, fds: list[int] = ()) -> None:
        socket.send_fds(self._control, [json.dumps(request).encode()], list(fds))

    def _receive(self) -> list:
        reply = self._control.recv(1 << 16)
        if not reply:
            raise RuntimeError("the grader's fork server died; rerun the grade")
        return json.loads(reply)

    def _answered(self) -> None:
        """Read the pid replies still owed (replies come in request order)."""
        while self._unanswered:
            self._unanswered.pop(0).pid = self._receive()[1]

    def _ask(self, request: list, fds: list[int] = ()) -> list:
        self._answered()
        self._send(request, fds)
        return self._receive()

    def _fork(self, spec: dict, key: str, spare: bool = False) -> _Child:
        ours, theirs = socket.socketpair()
        child = _Child(key, ours)
        try:
            self._send(["spawn", {**spec, "spare": spare}], [theirs.fileno()])
        finally:
            theirs.close()
        self._unanswered.append(child)
        return child

    def spawn(self, spec: dict, spares: int | None = None) -> tuple[int, socket.socket]:
        """A sandbox serving ``spec``: its pid and the grader's end of its socket. ``spares``: how many
        more sandboxes of this spec are still to come (at most ``SPARES`` are forked ahead)."""
        key = _freshness_key(spec)
        if self._ready and self._ready[0].key != key:
            for stale in self._ready:
                self.discard(stale)
            self._ready = []
        child = self._ready.pop(0) if self._ready else self._fork(spec, key)
        self._answered()
        wanted = self._spares if spares is None else min(spares, self._spares)
        while len(self._ready) < wanted:
            self._ready.append(self._fork(spec, key, spare=True))  # replies read at the next request
        return child.pid, child.sock

    def release(self, pid: int) -> None:
        """Forget a sandbox the grader has SIGKILLed: the fork server reaps it, and kills whatever it left,
        while the grader goes on (``sweep`` waits for that)."""
        self._send(["release", pid])

    def discard(self, child: _Child) -> None:
        self._answered()
        _kill_group(child.pid)
        child.sock.close()
        self.release(child.pid)

    def reap(self, pid: int) -> int | None:
        """The sandbox's exit code once it has died (negative: killed by that signal)."""
        return self._ask(["reap", pid])[1]

    def sweep(self) -> None:
        """Return once every sandbox (the spares too) is gone and nothing any of them started is left."""
        spares, self._ready = self._ready, []
        for spare in spares:
            self.discard(spare)
        self._ask(["sweep"])

    def isolation(self) -> list[str]:
        """What its sandboxes get (asked once: the fork server tries it in a throwaway child)."""
        if self._isolation is None:
            self._isolation = self._ask(["isolation"])[1]
        return self._isolation


_server: ForkServer | None = None


def fork_server() -> ForkServer:
    global _server
    if _server is None or not _server.alive():
        _server = ForkServer()
    return _server


def sweep() -> None:
    """After a grade: no process a sandbox started survives it (no-op without a fork server)."""
    if _server is not None and _server.alive():
        _server.sweep()


# -- sandbox side --------------------------------------------------------------------------------

def load_submission(path: Path, name: str, guard: Guard, source: bytes | None = None) -> types.ModuleType:
    """Import ``path`` (or its ``source``, read earlier) as module ``name`` without putting its folder on
    sys.path; its module-level code runs guarded."""
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    if source is None:
        source = Path(path).read_bytes()  # compiled here: a .pyc beside it is never used
    guard.guarded(exec)(compile(source, str(path), "exec", dont_inherit=True), module.__dict__)
    return module


_probe_modules: dict[str, types.ModuleType] = {}


def _probe_function(file: str, qualname: str | None) -> Callable | None:
    module = _probe_modules.get(file)
    if module is None:
        spec = importlib.util.spec_from_file_location(f"dlkata_probes_{len(_probe_modules)}", file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _probe_modules[file] = module
    return getattr(module, qualname) if qualname else None


def exception_record(exc: BaseException, learner_file: Path, when: str = "") -> dict:
    """The learner's exception as plain text: type, MRO names, message, their frames only."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if Path(f.filename) == learner_file]
    shown = mine + ([frames[-1]] if frames and frames[-1] not in mine else [])
    lines = [f'  File "{Path(f.filename).name}", line {f.lineno}, in {f.name}\n    {f.line or ""}'.rstrip()
             for f in shown]
    try:
        message = str(exc)
    except BaseException:  # a hostile __str__
        message = "<unprintable message>"
    return {"kind": "raised", "type": type(exc).__name__,
            "mro": [c.__name__ for c in type(exc).__mro__], "message": message[:4000],
            "file": learner_file.name + when, "traceback": "\n".join(lines)[-4000:]}


class _Session:
    """The sandbox-side state: the guard, the imported submission (or why it failed)."""

    def __init__(self, spec: dict, guard: Guard | None = None) -> None:
        self.handle = types.MethodType(_Session.handle, self)  # bound before any submission code can patch it
        self.path = Path(spec["module_path"])
        self.guard = guard or Guard(spec["forbidden"], spec["forbidden_aten"])
        self.module: types.ModuleType | None = None
        self.import_error: dict | None = None
        try:
            self.guard.install()
        except Exception as exc:  # a bug in the kit, not the learner's: say so instead of dying silently
            self.import_error = {"kind": "raised", "type": "GraderError", "mro": ["GraderError"],
                                 "message": f"the grader could not install the forbidden-API guard: {exc!r}",
                                 "file": "the grader", "traceback": ""}
            return
        try:
            self.module = load_submission(self.path, spec["module_name"], self.guard, spec.get("source"))
        except BaseException as exc:  # SystemExit and KeyboardInterrupt at import count as errors too
            self.import_error = exception_record(exc, self.path, " (while importing)")
            self.import_error["kind"] = "import"
            if self.guard.violations:  # module-level code ran guarded too
                self.import_error = {"kind": "forbidden", "message": self.guard.violations[0]}

    def handle(self, probe: Callable | tuple[str, str], args: tuple, kwargs: dict) -> dict:
        """Run one probe; ``probe`` is the function, or its (file, qualname) in a sandbox process."""
        if self.import_error:
            return {"ok": False, "error": self.import_error}
        try:
            if isinstance(probe, tuple):
                probe = _probe_function(*probe)
            value = self.guard.guarded(probe)(self.module, *args, **kwargs)  # all of it: aliases, returned objects
        except ForbiddenAPIError as exc:
            return {"ok": False, "error": {"kind": "forbidden", "message": str(exc)}}
        except BaseException as exc:
            if self.guard.violations:
                return {"ok": False, "error": {"kind": "forbidden", "message": self.guard.violations[0]}}
            return {"ok": False, "error": exception_record(exc, self.path)}
        if self.guard.violations:
            return {"ok": False, "error": {"kind": "forbidden", "message": self.guard.violations[0]}}
        return {"ok": True, "value": value}


def _reply(conn, envelope: dict) -> None:
    try:
        payload = wire.encode(envelope)
    except wire.Unsupported as exc:
        payload = wire.encode({"ok": False, "error": {"kind": "unsupported", "message": str(exc)}})
    except BaseException as exc:  # e.g. a tensor whose storage cannot be read
        payload = wire.encode({"ok": False, "error": {"kind": "unsupported",
                                                      "message": f"{wire.UNSUPPORTED}: {type(exc).__name__}"}})
    conn.send_bytes(payload)


def hidden_paths(module_path: Path) -> list[Path]:
    """What a submission must not read: the kit's solutions, tests, hidden tests and history (except the
    folder being graded, when an instructor grades the reference itself)."""
    root = kit_root()
    candidates = [root / "solutions", root / "tests", root / "grader" / "hidden", root / ".git"]
    return [p for p in candidates if p.exists() and p not in module_path.parents]


def serve(conn, spec: dict, guard: Guard | None = None, netns: int | None = None) -> None:
    """Sandbox process main: isolate, import the submission, answer probes until the pipe closes.
    ``guard``: the spec's guard as the fork server prepared it (wrappers made, not installed); ``netns``:
    its grader's network namespace (``isolation.network_namespace``), entered and then closed."""
    os.setsid()  # its own process group, so the grader can kill it and everything it started
    # The cores its grader may use: a batch with a grader on every core pins each to one, with its
    # sandboxes, so that a grader and its sandbox hand over on one core, warm.
    with contextlib.suppress(OSError):  # best effort: a core taken away since
        os.sched_setaffinity(0, spec["cpus"])
    workdir = Path(spec["workdir"])
    for file in spec["probe_files"]:  # before the hidden tests' folder disappears from view
        _probe_function(file, None)
    spec = {**spec, "source": Path(spec["module_path"]).read_bytes()}  # while it may still read it
    hide = hidden_paths(Path(spec["module_path"]))
    private_namespaces(hide, workdir, netns)
    if netns is not None:
        os.close(netns)
    apply_limits(Limits(**spec["limits"]))
    drop_privileges(workdir)
    os.chdir(workdir)  # after the private tmpfs is mounted on it
    os.environ["TMPDIR"] = tempfile.tempdir = str(workdir)  # the only writable place
    install_audit_hook(hide, [workdir, *map(Path, spec["writable"])], kit_root())
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    if not os.environ.get("DLKATA_SANDBOX_STDERR"):  # kept only when debugging the grader itself
        os.dup2(devnull, 2)
    if spec.get("spare"):  # it waits for its test: rehearsing now, its first probe copies fewer pages
        zygote.rehearse_probe()  # before the submission is imported, so none of its code runs unguarded
    session = _Session(spec, guard)
    while True:
        try:
            payload = conn.recv_bytes()
        except (EOFError, OSError):
            break
        try:
            probe, args, kwargs = pickle.loads(payload)  # plain pickle: no torch shared-memory reducers
        except Exception as exc:  # a test passed something the sandbox cannot rebuild: a kit bug
            _reply(conn, {"ok": False, "error": {"kind": "unsupported", "message":
                          f"the grader could not send this probe's arguments to the sandbox: {exc!r}"}})
            continue
        _reply(conn, session.handle(probe, args, kwargs))
    os._exit(0)


# -- grader side ---------------------------------------------------------------------------------

def _raise_for(error: dict) -> None:
    kind = error.get("kind")
    if kind == "forbidden":
        raise ForbiddenCall(error["message"])
    if kind == "unsupported":
        raise UnsupportedResult(error["message"])
    raise SubmissionRaised(error)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "the sandbox process vanished"
    if code < 0:
        name = signal.Signals(-code).name
        why = {"SIGSEGV": "segmentation fault", "SIGKILL": "killed, e.g. out of memory",
               "SIGXCPU": "CPU time limit", "SIGXFSZ": "file size limit", "SIGABRT": "aborted"}.get(name, "")
        return f"the sandbox process died from {name}" + (f" ({why})" if why else "")
    return f"the sandbox process exited with status {code} in the middle of a probe (os._exit or a hard exit?)"


class Sandbox:
    """The probes of one test against one submission module."""

    def __init__(self, module_path: Path, module_name: str, *, timeout_s: float,
                 forbidden: tuple[str, ...] = (), forbidden_aten: tuple[str, ...] = (),
                 limits: Limits | None = None, inline: bool = False, probe_files: tuple[str, ...] = (),
                 writable: tuple[str, ...] = (), spares: int | None = None) -> None:
        """``spares``: how many more sandboxes of this spec the caller will want (the tests still to run
        after this one), so that no spare is forked only to be thrown away; None: as many as may be."""
        self.module_path = Path(module_path).resolve()
        writable = (*writable, *(p for p in os.environ.get(WRITABLE_ENV, "").split(os.pathsep) if p))
        self.spec = {"module_path": str(self.module_path), "module_name": module_name,
                     "probe_files": tuple(probe_files), "writable": [os.path.realpath(p) for p in writable],
                     "forbidden": tuple(forbidden), "forbidden_aten": tuple(forbidden_aten),
                     "limits": vars(limits or Limits(cpu_s=max(120.0, timeout_s * 20))),
                     "cpus": sorted(os.sched_getaffinity(0))}  # its grader's: see serve
        self.timeout_s = timeout_s
        self.inline = inline
        self.spares = spares
        self._first = True
        self._pid: int | None = None
        self._server: ForkServer | None = None  # the one that forked it: only it can reap it
        self._sock: socket.socket | None = None
        self._failure: ProbeFailure | None = None
        self._session: _Session | None = None

    # -- public ------------------------------------------------------------------------------------
    def run(self, probe: Callable, *args: Any, **kwargs: Any) -> Any:
        """Call ``probe(module, *args, **kwargs)`` in the sandbox and return its plain-data result."""
        if self._failure is not None:
            raise type(self._failure)(self._failure.message)
        if self.inline:
            envelope = self._inline(probe, args, kwargs)
        else:
            envelope = self._remote(((_probe_file(probe), probe.__qualname__), args, kwargs))
        if not envelope["ok"]:
            _raise_for(envelope["error"])
        return envelope["value"]

    def close(self) -> None:
        """Kill the sandbox (the fork server reaps it and removes its working directory)."""
        self._kill()  # before closing the socket: a live sandbox woken by EOF would take the CPU first
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- in process --------------------------------------------------------------------------------
    def _inline(self, probe: Callable, args: tuple, kwargs: dict) -> dict:
        if self._session is None:
            self._session = _Session(self.spec)
        envelope = self._session.handle(probe, args, kwargs)
        try:
            return wire.decode(wire.encode(envelope))
        except wire.Unsupported as exc:
            raise UnsupportedResult(str(exc)) from None

    # -- out of process ----------------------------------------------------------------------------
    def _remote(self, request: tuple) -> dict:
        if self._pid is None:
            self._server = fork_server()
            first_file = request[0][0]  # loaded before the sandbox gives up the grader's user
            files = [*self.spec["probe_files"], *([first_file] if first_file not in self.spec["probe_files"] else [])]
            self._pid, self._sock = self._server.spawn({**self.spec, "probe_files": files}, self.spares)
        allowance = IMPORT_ALLOWANCE_S if self._first else 0.0  # the first probe also imports the submission
        self._first = False
        deadline = time.monotonic() + self.timeout_s + allowance
        try:
            _send_frame(self._sock, pickle.dumps(request), deadline)
            payload = _recv_frame(self._sock, deadline, wire.MAX_RESULT_BYTES)
        except ProbeFailure:
            raise
        except TimeoutError:  # also a reply begun and never finished, or a sandbox that stopped reading
            self._fail(ProbeTimeout(f"timeout: the probe ran longer than {self.timeout_s:g} s "
                                    "(an infinite loop, or far too slow?)"))
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self._server.reap(self._pid) if self._server.alive() else None
            self._pid = None
            self._fail(ProbeCrashed(f"crashed: {_describe_exit(code)}"))
        except _TooLarge:
            self._fail(UnsupportedResult(f"{wire.UNSUPPORTED}: larger than {wire.MAX_RESULT_BYTES} bytes"))
        try:
            return wire.decode(payload)
        except wire.Unsupported as exc:
            raise UnsupportedResult(str(exc)) from None

    def _fail(self, failure: ProbeFailure) -> None:
        self._failure = failure
        self._kill()
        raise failure

    def _kill(self) -> None:
        if self._pid is None:
            return
        _kill_group(self._pid)
        if self._server.alive():  # a dead fork server took its children (and their orphans) with it
            self._server.release(self._pid)
        self._pid = None


# Frames as multiprocessing.Connection writes them (the sandbox's side is a Connection), read here against
# a deadline: a sandbox that announces a reply and never finishes it is a timeout, not a hang.

class _TooLarge(Exception):
    pass


def _send_frame(sock: socket.socket, payload: bytes, deadline: float) -> None:
    sock.settimeout(max(deadline - time.monotonic(), 1e-3))
    sock.sendall(struct.pack("!i", len(payload)) + payload)


def _recv_exactly(sock: socket.socket, size: int, deadline: float) -> bytes:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        count = sock.recv_into(view[got:])
        if count == 0:
            raise EOFError
        got += count
    return bytes(buffer)


def _recv_frame(sock: socket.socket, deadline: float, limit: int) -> bytes:
    (size,) = struct.unpack("!i", _recv_exactly(sock, 4, deadline))
    if size == -1:
        (size,) = struct.unpack("!Q", _recv_exactly(sock, 8, deadline))
    if size > limit:
        raise _TooLarge
    return _recv_exactly(sock, size, deadline)


def _probe_file(probe: Callable) -> str:
    if "." in probe.__qualname__ or "<" in probe.__qualname__:
        raise TypeError(f"probe {probe.__qualname__} must be a module-level function of the test file")
    return probe.__code__.co_filename
