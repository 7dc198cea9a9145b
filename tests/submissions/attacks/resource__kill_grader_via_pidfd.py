"""Resource attack (own grader process): SIGKILL the grader itself (the fork server's parent) with
pidfd_open + pidfd_send_signal, which the audit hook's os.kill/os.killpg check never sees."""
import os as _os
import signal as _signal

if _os.environ.get("DLKATA_HARDENING_SACRIFICE"):  # only in a grader process the test can lose
    with open(f"/proc/{_os.getppid()}/stat") as _stat:
        _grader = int(_stat.read().rsplit(")", 1)[1].split()[1])
    _signal.pidfd_send_signal(_os.pidfd_open(_grader), _signal.SIGKILL)
raise NotImplementedError("the grader is gone")
