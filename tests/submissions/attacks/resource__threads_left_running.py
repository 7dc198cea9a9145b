"""Resource attack (acts after the grade): threads left running (threading.Thread, daemonic and not, and a
raw _thread) that spin and wait for the grade to end, then try to act."""
import _thread
import os as _os
import threading as _threading
import time as _time
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]


def _lurk():
    deadline = _time.monotonic() + 120
    while _time.monotonic() < deadline:
        if (_HERE / "graded").exists():
            with open(_HERE / "markers" / "resource__threads_left_running", "a") as mark:
                mark.write(f"a thread of sandbox {_os.getpid()} was still running after the grade\n")
            return
        _time.sleep(0.05)


_threading.Thread(target=_lurk, daemon=True).start()
_threading.Thread(target=_lurk, daemon=False).start()
_thread.start_new_thread(_lurk, ())
