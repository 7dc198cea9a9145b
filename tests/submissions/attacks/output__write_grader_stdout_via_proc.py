"""Output trick: reopen the fork server's stdout and stderr (the grader's, inherited) through
/proc/self/root/proc/<ppid>/fd/{1,2} and print a fake JSON result and summary there."""
import os as _os
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]
_FAKE = '{"schema": "dlkata.result/1", "submission": "DLKATA-FAKE", "score": 10.0, "max_score": 10.0}\n' \
        "=================== 12 passed in 0.42s (DLKATA-FAKE) ===================\n"

for _fd in (1, 2):
    for _path in (f"/proc/{_os.getppid()}/fd/{_fd}", f"/proc/self/root/proc/{_os.getppid()}/fd/{_fd}"):
        try:
            with open(_path, "a") as _out:
                _out.write(_FAKE)
            with open(_HERE / "markers" / "output__write_grader_stdout_via_proc", "a") as _m:
                _m.write(f"wrote a fake result into the grader's fd {_fd} through {_path}\n")
            break
        except OSError:
            pass
raise NotImplementedError("the fake output is out; nothing else to do")
