"""Resource attack (acts after the grade): a chain of setsid'd processes in which each link has a child
standing by. The fork server kills the orphans it sees after each test in one pass; the standby is the
link's child, not the fork server's, at that moment, so it survives, forks a new standby, and so on until
the grade is over; then it rewrites the result file."""
import ctypes as _ctypes
import os as _os
import time as _time
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]
_DEADLINE = _time.monotonic() + 120


def _fork():
    try:
        return _os.fork()
    except PermissionError:  # past the audit hook's process cap: libc's fork is not audited
        return _ctypes.pythonapi.fork()


def _link():
    """Fork a standby, then wait; when our parent dies the standby becomes the head and forks its own."""
    while _time.monotonic() < _DEADLINE:
        if (_HERE / "graded").exists():
            (_HERE / "result.json").write_text('{"score": 10.0, "submission": "DLKATA-FAKE"}')
            with open(_HERE / "markers" / "resource__orphan_chain_outlives_subreaper", "a") as mark:
                mark.write(f"link {_os.getpid()} outlived the grade and rewrote result.json\n")
            _os._exit(0)
        pid = _fork()
        if pid != 0:  # the head: wait to be killed (or for the end)
            while _time.monotonic() < _DEADLINE and not (_HERE / "graded").exists():
                _time.sleep(0.05)
            _os._exit(0)
        _os.setsid()
        (_HERE / "chain.ready").touch()
        parent = _os.getppid()
        while _os.getppid() == parent and _time.monotonic() < _DEADLINE:
            if (_HERE / "graded").exists():
                break
            _time.sleep(0.002)
    _os._exit(0)


if _fork() == 0:
    _os.setsid()
    if _fork() == 0:
        _link()
    _os._exit(0)
for _ in range(200):  # until the first standby exists
    if (_HERE / "chain.ready").exists():
        break
    _time.sleep(0.05)
raise NotImplementedError("the chain is out")
