"""Resource attack: kill the parent (the fork server) and its process group with os.kill/os.killpg, and
signal the grader above it (signal 0, harmless if it got through), at import."""
import os as _os
import signal as _signal
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]


def _parent_of(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


_zygote = _os.getppid()
_grader = _parent_of(_zygote)
for _what, _call in (("kill the fork server", lambda: _os.kill(_zygote, _signal.SIGKILL)),
                     ("kill the fork server's group", lambda: _os.killpg(_os.getpgid(_zygote), _signal.SIGKILL)),
                     ("signal the grader", lambda: _os.kill(_grader, 0)),
                     ("signal the grader's group", lambda: _os.killpg(_os.getpgid(_grader), 0))):
    try:
        _call()
    except OSError:
        continue
    with open(_HERE / "markers" / "resource__kill_fork_server_os_kill", "a") as _m:
        _m.write(f"managed to {_what}\n")
raise NotImplementedError("tried to kill the parents")
