"""The fork server: a warm process that has imported torch and the test helpers, and forks one sandbox
per test on request.

Forking is ~10 ms where starting Python and importing torch is seconds. It is safe only because this
process never runs a multi-threaded op: a child forked after its parent entered an OpenMP region hangs
in libgomp on its next parallel op. The zygote only imports modules and forks.

Protocol on the control socket (one request, one reply, pickled; the grader is the only peer):
  ("spawn", spec) + the sandbox's socket as an SCM_RIGHTS fd  ->  ("pid", pid)
  ("reap", pid)                                               ->  ("status", exit code or None)
"""

from __future__ import annotations

import importlib
import os
import pickle
import socket
import sys
import time

PRELOAD = ["torch", "numpy", "pytest", "hypothesis", "grader.sandbox", "grader.testing"]
MAX_MESSAGE = 1 << 20


def _exit_code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _reap(pid: int, wait_s: float = 3.0) -> int | None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return _exit_code(status)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.005)


def _spawn(control: socket.socket, spec: dict, fd: int) -> int:
    pid = os.fork()
    if pid == 0:  # the sandbox
        try:
            control.close()
            from multiprocessing.connection import Connection

            from grader.sandbox import serve

            serve(Connection(fd), spec)
        finally:
            os._exit(70)
    os.close(fd)
    return pid


def warm_up() -> None:
    """Import everything lazily imported on first use (a dispatch mode's first use costs ~1.4 s), with
    ops far too small to start a thread pool."""
    for name in PRELOAD:
        importlib.import_module(name)
    import torch

    from grader.guard import Guard

    Guard(forbidden_aten=("aten::_softmax",)).guarded(lambda: torch.zeros(2).add(1).sum())()


def main(control_fd: int) -> None:
    warm_up()
    control = socket.socket(fileno=control_fd)
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(control, MAX_MESSAGE, 1)
        except OSError:
            break
        if not data:
            break  # the grader went away
        request = pickle.loads(data)
        if request[0] == "spawn":
            reply = ("pid", _spawn(control, request[1], fds[0]))
        else:
            reply = ("status", _reap(request[1]))
        control.sendall(pickle.dumps(reply))
    os._exit(0)


if __name__ == "__main__":
    main(int(sys.argv[1]))
