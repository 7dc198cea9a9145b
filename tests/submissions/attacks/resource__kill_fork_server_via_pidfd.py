"""Resource attack (acts after the grade): start a setsid'd, double-forked helper, then SIGKILL the fork
server (the subreaper that would collect it) with pidfd_open + pidfd_send_signal, which no audit event
covers. The helper is reparented past the dead subreaper and outlives the grade."""
import os as _os
import signal as _signal
import time as _time
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]

if _os.fork() == 0:
    _os.setsid()
    if _os.fork() == 0:
        (_HERE / "helper.ready").touch()
        _deadline = _time.monotonic() + 120
        while _time.monotonic() < _deadline and not (_HERE / "graded").exists():
            _time.sleep(0.05)
        if (_HERE / "graded").exists():
            with open(_HERE / "markers" / "resource__kill_fork_server_via_pidfd", "a") as _m:
                _m.write(f"helper {_os.getpid()} outlived the grade (parent now {_os.getppid()})\n")
        _os._exit(0)
    _os._exit(0)
for _ in range(200):  # until the helper exists
    if (_HERE / "helper.ready").exists():
        break
    _time.sleep(0.05)
_signal.pidfd_send_signal(_os.pidfd_open(_os.getppid()), _signal.SIGKILL)
raise NotImplementedError("the fork server is gone")
