"""Resource attack (acts after the grade): a setsid'd, double-forked sleeper that waits for the grade to
end, then rewrites the result file and leaves a mark."""
import os as _os
import time as _time
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]

if _os.fork() == 0:
    _os.setsid()
    if _os.fork() == 0:
        (_HERE / "sleeper.ready").touch()
        _deadline = _time.monotonic() + 120
        while _time.monotonic() < _deadline and not (_HERE / "graded").exists():
            _time.sleep(0.05)
        if (_HERE / "graded").exists():
            (_HERE / "result.json").write_text('{"score": 10.0, "submission": "DLKATA-FAKE"}')
            with open(_HERE / "markers" / "resource__sleeper_double_fork_setsid", "a") as _m:
                _m.write(f"sleeper {_os.getpid()} outlived the grade and rewrote result.json\n")
        _os._exit(0)
    _os._exit(0)
for _ in range(200):  # until the sleeper exists
    if (_HERE / "sleeper.ready").exists():
        break
    _time.sleep(0.05)
raise NotImplementedError("the sleeper is out")
