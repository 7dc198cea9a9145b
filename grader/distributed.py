"""Run a function on a fresh gloo world: ``run_world(fn, world_size, *args)``.

Each rank is a process forked from the caller (inside a probe: the sandbox, so the submission module is
already imported and ``fn`` may be any function, including a probe-module function). A rank

1. dies with its parent (``PR_SET_PDEATHSIG``: if the sandbox is killed, so are the ranks); it stays in
   the caller's process group (a sandbox may signal no other group, and the grader kills that group);
2. sets ``torch.set_num_threads(1)``: a process forked after its parent ran a multi-threaded op hangs in
   libgomp on its next parallel op unless it stays single-threaded;
3. joins a gloo process group over loopback; rank 0 serves the ``TCPStore`` on a socket the caller bound
   and started listening on before forking, so there is no race for a free port;
4. calls ``fn(rank, world_size, *args, **kwargs)``, sends its result (plain data, pickled) back through a
   pipe, waits at a store barrier for every rank to finish, and destroys the group.

The caller collects the results in rank order. A rank that raises sends its traceback and then waits to
be killed (it keeps its connections open, so the other ranks do not fail in turn and hide the cause);
a rank that dies (``os._exit``, a signal) closes its pipe without a result. Either is a ``WorldError``
naming the rank; no result from everyone within ``timeout_s`` is a ``WorldTimeout``. Whatever happens,
every rank and every process it started (found through ``/proc``) is killed, and the ranks are reaped,
before ``run_world`` returns or raises (once all results are in, a rank still leaving is killed rather
than waited for).

``CollectiveLog`` (a small extra for tests) records the collectives a rank launches, however they are
spelled: ``dist.all_reduce``, an imported name, ``async_op=True``, a ``ProcessGroup`` method,
``torch.distributed.nn`` or the functional collectives all reach the dispatcher as ``c10d`` /
``_c10d_functional`` ops, where a dispatch mode sees them.

Linux only (``fork``, ``prctl``).
"""

from __future__ import annotations

import ctypes
import datetime
import functools
import os
import pickle
import signal
import socket
import sys
import time
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

__all__ = ["CollectiveLog", "WorldError", "WorldTimeout", "run_world"]

MAX_TRACEBACK_CHARS = 3000
PR_SET_PDEATHSIG = 1
try:  # libc's prctl; a sandbox's audit hook refuses loading libraries later, so look it up at import
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = ctypes.pythonapi  # the main program's symbols include libc's


class WorldError(RuntimeError):
    """A rank raised or crashed; the message names the rank and includes its traceback text.

    When a rank raised an exception whose class the caller can see (a builtin, or one defined in any
    module loaded before the fork), the error is also an instance of that class: a rank's ``ValueError``
    arrives as a ``WorldError`` that is a ``ValueError`` too, and a stub's ``NotImplementedError`` still
    reads as "not implemented"."""


class WorldTimeout(WorldError):
    """Some rank did not finish in time (a hang or a deadlock, e.g. mismatched collectives)."""


def run_world(fn: Callable, world_size: int, *args: Any, timeout_s: float = 30.0, **kwargs: Any) -> list[Any]:
    """Run ``fn(rank, world_size, *args, **kwargs)`` on ``world_size`` gloo ranks; their results in rank order."""
    if int(world_size) != world_size or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    _warm_up()
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    port = listener.getsockname()[1]
    sys.stdout.flush()
    sys.stderr.flush()
    ranks: dict[int, tuple[int, Connection]] = {}  # rank -> (pid, the caller's end of its pipe)
    try:
        for rank in range(world_size):
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                _rank_main(rank, world_size, listener, port, write_fd, fn, args, kwargs, timeout_s)
            os.close(write_fd)
            ranks[rank] = (pid, Connection(read_fd, writable=False))
        listener.close()
        return _collect(ranks, world_size, timeout_s)
    finally:
        listener.close()
        _kill_all(ranks)


class CollectiveLog:
    """``with CollectiveLog() as log: ...`` records each collective this process launches meanwhile.

    ``log.calls`` is a list of ``{"kind", "op", "numel", "async_op", "time_ns"}``: ``kind`` is one of
    ``all_reduce``, ``all_gather``, ``reduce_scatter``, ``broadcast``, ``reduce``, ``gather``, ``scatter``,
    ``all_to_all``, ``barrier``, ``send``, ``recv``; ``op`` the dispatcher op (``c10d.allreduce_``);
    ``numel`` the elements of its first tensor argument (all tensors of it when it is a list, e.g. the
    tensors an all-reduce reduces); ``async_op`` whether it was launched with ``async_op=True`` (None for
    the functional collectives, which are always asynchronous); ``time_ns`` ``time.perf_counter_ns()`` at
    launch (an async collective is recorded when launched, not when waited for). ``log.count(kind)``
    counts one kind.
    """

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self._mode = None

    def count(self, kind: str) -> int:
        return sum(call["kind"] == kind for call in self.calls)

    def __enter__(self) -> "CollectiveLog":
        self._mode = _collective_mode_class()(self.calls)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._mode.__exit__(*exc_info)


_COLLECTIVE_KINDS = [("allreduce", "all_reduce"), ("all_reduce", "all_reduce"), ("reduce_scatter", "reduce_scatter"),
                     ("allgather", "all_gather"), ("all_gather", "all_gather"), ("alltoall", "all_to_all"),
                     ("all_to_all", "all_to_all"), ("broadcast", "broadcast"), ("barrier", "barrier"),
                     ("monitored_barrier", "barrier"),
                     ("reduce", "reduce"), ("gather", "gather"), ("scatter", "scatter"), ("send", "send"),
                     ("recv", "recv")]


def _collective_kind(op_name: str) -> str | None:
    name = op_name.lstrip("_")
    return next((kind for prefix, kind in _COLLECTIVE_KINDS if name.startswith(prefix)), None)


def _numel(arg: Any) -> int:
    import torch

    if isinstance(arg, torch.Tensor):
        return arg.numel()
    if isinstance(arg, (list, tuple)):
        return sum(_numel(a) for a in arg)
    return 0


def _async_op(func, args: tuple, kwargs: dict) -> bool | None:
    """The ``async_op`` a c10d op was called with (None for ops without one, e.g. functional collectives)."""
    names = [a.name for a in func._schema.arguments]
    if "async_op" not in names:
        return None
    i = names.index("async_op")
    return bool(kwargs["async_op"] if "async_op" in kwargs else args[i] if i < len(args) else True)


_mode_class = None


def _collective_mode_class():
    global _mode_class
    if _mode_class is None:
        from torch.utils._python_dispatch import TorchDispatchMode

        class CollectiveMode(TorchDispatchMode):
            def __init__(self, calls: list) -> None:
                super().__init__()
                self.calls = calls

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if func.namespace in ("c10d", "_c10d_functional"):
                    kind = _collective_kind(func.overloadpacket.__name__)
                    if kind is not None:
                        self.calls.append({"kind": kind, "op": f"{func.namespace}.{func.overloadpacket.__name__}",
                                           "numel": _numel(args[0]) if args else 0,
                                           "async_op": _async_op(func, args, kwargs or {}),
                                           "time_ns": time.perf_counter_ns()})
                return func(*args, **(kwargs or {}))

        _mode_class = CollectiveMode
    return _mode_class


@functools.lru_cache(maxsize=None)
def _warm_up() -> None:
    """Do once, in the caller, what every rank would otherwise do on first use: a dispatch mode's first use
    imports torch._dynamo (seconds). A fork server warmed for the exercise (its ``preload``) has done it
    already."""
    import torch

    with CollectiveLog():
        torch.zeros(1).add_(1)


# -- the caller's side -------------------------------------------------------------------------------

def _collect(ranks: dict[int, tuple[int, Connection]], world_size: int, timeout_s: float) -> list[Any]:
    results: list[Any] = [None] * world_size
    pending = {conn: rank for rank, (_pid, conn) in ranks.items()}
    deadline = time.monotonic() + timeout_s
    while pending:
        ready = wait(list(pending), timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            late = ", ".join(str(r) for r in sorted(pending.values()))
            raise WorldTimeout(f"rank {late} of a world of {world_size} did not finish within {timeout_s:g} s "
                               "(a hang or a deadlock: do all ranks call the same collectives in the same order?)")
        failures = []
        for conn in ready:
            rank = pending.pop(conn)
            outcome = _receive(conn, rank, ranks[rank][0], world_size)
            if isinstance(outcome, _Failure):
                failures.append(outcome)
            else:
                results[rank] = outcome
        if failures:
            # One rank's death makes its peers fail too ("connection closed"): give them a moment to
            # report, then name a crash before an exception, and the lowest rank first.
            for conn in wait(list(pending), timeout=0.05):
                rank = pending.pop(conn)
                outcome = _receive(conn, rank, ranks[rank][0], world_size)
                if isinstance(outcome, _Failure):
                    failures.append(outcome)
            raise min(failures, key=lambda f: (not f.crashed, f.rank)).error
    return results


class _Failure:
    def __init__(self, rank: int, error: BaseException, crashed: bool) -> None:
        self.rank, self.error, self.crashed = rank, error, crashed


def _receive(conn: Connection, rank: int, pid: int, world_size: int) -> Any:
    try:
        status, value, *where = pickle.loads(conn.recv_bytes())
    except (EOFError, OSError):
        return _Failure(rank, WorldError(f"rank {rank} of {world_size} crashed: {_describe_exit(_wait_exit(pid))}"),
                        crashed=True)
    if status == "ok":
        return value
    if status == "forbidden":
        from grader.guard import ForbiddenAPIError

        return _Failure(rank, ForbiddenAPIError(value), crashed=False)
    return _Failure(rank, _world_error(f"rank {rank} of {world_size} raised {value}", *where), crashed=False)


def _world_error(message: str, module: str = "", qualname: str = "") -> WorldError:
    """A ``WorldError`` that is also an instance of the rank's exception class when the caller has that class
    too (forked: the same modules are loaded), so ``except ValueError`` and the grader's not-implemented
    check see the rank's exception."""
    cls: Any = sys.modules.get(module)
    for part in qualname.split(".") if cls is not None else ():
        cls = getattr(cls, part, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, WorldError):
        try:
            return _with_world_error(cls)(message)
        except TypeError:  # incompatible layouts (e.g. OSError, __slots__): the plain WorldError
            pass
    return WorldError(message)


@functools.lru_cache(maxsize=None)
def _with_world_error(cls: type) -> type:
    return type(cls.__name__, (WorldError, cls), {"__module__": __name__, "__doc__": WorldError.__doc__})


def _wait_exit(pid: int, wait_s: float = 1.0) -> int | None:
    """The exit code of a rank that closed its pipe (negative: the signal that killed it), None if alive."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        time.sleep(0.005)
    return None


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "its process closed its pipe without sending a result"
    if code < 0:
        return f"its process died from {signal.Signals(-code).name}"
    return f"its process exited with status {code} without sending a result (os._exit?)"


def _kill_all(ranks: dict[int, tuple[int, Connection]]) -> None:
    """SIGKILL every rank and whatever it started (its descendants, found through /proc), then reap the ranks.

    The ranks stay in the caller's process group: a sandbox may signal only its own group."""
    for _pid, conn in ranks.values():
        conn.close()
    doomed: list[int] = []
    for pid, _conn in ranks.values():
        _stop_tree(pid, doomed)
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for pid, _conn in ranks.values():
        _wait_exit(pid, wait_s=2.0)  # bounded: a rank we could not kill is left to the sandbox's reaper


def _stop_tree(pid: int, found: list[int]) -> None:
    """Freeze ``pid`` (so it starts nothing more), then its children, depth first."""
    try:
        os.kill(pid, signal.SIGSTOP)
    except OSError:
        return
    found.append(pid)
    for child in _children(pid):
        _stop_tree(child, found)


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    children = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return children


# -- a rank's side -----------------------------------------------------------------------------------

def _rank_main(rank: int, world_size: int, listener: socket.socket, port: int, write_fd: int,
               fn: Callable, args: tuple, kwargs: dict, timeout_s: float) -> None:
    """The forked rank: never returns into the caller's code."""
    out = None
    try:
        _die_with_parent(os.getppid())
        out = Connection(write_fd, readable=False)
        if rank != 0:
            listener.close()
        _run_rank(rank, world_size, listener, port, out, fn, args, kwargs, timeout_s)
    except BaseException as exc:
        if out is not None:
            out.send_bytes(pickle.dumps(_error_message(exc)))
        _flush()
        while True:  # keep this rank's connections open (its peers do not fail in turn) until it is killed
            signal.pause()
    finally:
        os._exit(0)


def _run_rank(rank: int, world_size: int, listener: socket.socket, port: int, out: Connection,
              fn: Callable, args: tuple, kwargs: dict, timeout_s: float) -> None:
    """Join the world, run ``fn``, send its result, wait for every rank to finish, leave."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", _loopback_interface())
    timeout = datetime.timedelta(seconds=timeout_s + 5)  # the caller's deadline comes first
    store = dist.TCPStore("127.0.0.1", port, world_size, is_master=rank == 0, timeout=timeout,
                          wait_for_workers=False, master_listen_fd=listener.fileno() if rank == 0 else None)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size, timeout=timeout)
    payload = pickle.dumps(("ok", fn(rank, world_size, *args, **kwargs)))  # fails here if it cannot be sent
    out.send_bytes(payload)
    _flush()
    # Nobody leaves before everyone has finished (rank 0 serves the store the others may still need).
    if store.add("dlkata/finished", 1) == world_size:
        store.set("dlkata/all_finished", "1")
    store.wait(["dlkata/all_finished"])
    if dist.is_initialized():
        dist.destroy_process_group()


def _error_message(exc: BaseException) -> tuple[str, str]:
    from grader.guard import ForbiddenAPIError

    if isinstance(exc, ForbiddenAPIError):
        return "forbidden", str(exc)
    try:
        head = f"{type(exc).__name__}: {exc}"
        text = "".join(traceback.format_exception(exc))
    except BaseException:  # a hostile __str__
        head, text = f"{type(exc).__name__}: <unprintable message>", ""
    if len(text) > MAX_TRACEBACK_CHARS:
        text = "[...]\n" + text[-MAX_TRACEBACK_CHARS:]
    return "error", f"{head[:1000]}\n{text}", type(exc).__module__, type(exc).__qualname__


def _die_with_parent(parent: int) -> None:
    try:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _loopback_interface() -> str:
    names = [name for _index, name in socket.if_nameindex()]
    return next((n for n in names if n in ("lo", "lo0")), next((n for n in names if n.startswith("lo")), "lo"))


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
