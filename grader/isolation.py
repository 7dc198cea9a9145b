"""What a sandbox process does to itself before any submission code runs.

In order: its own session and process group (the grader kills the whole group); where the kernel allows
it (root), its grader's network namespace, which has only loopback, and a mount namespace in which the
kit's solutions, tests, hidden-test sources and ``.git`` are covered by empty tmpfs mounts and the working
directory and ``/dev/shm`` are private size-limited tmpfs mounts; resource limits; when the grader runs as
root, an unprivileged user of its own (no capabilities, ``no_new_privs``, a process cap), so the kernel
refuses what Python-level checks cannot see (``setns``, signalling or ``pidfd_getfd`` on the grader, its
``/proc`` file descriptors, writing the kit); and an audit hook (``sys.addaudithook``: Python cannot
remove it) that refuses new programs, signals to other process groups, non-loopback sockets, reading
hidden paths, writing outside the working directory, ``gc`` introspection and loading native libraries.
"""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
import resource
import site
import socket
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 1 << 18
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
MAX_FORKS = 32  # the distributed exercises fork one process per rank
MAX_TASKS = 128  # RLIMIT_NPROC of a sandbox's own uid: processes and threads, however they were started
UID_BASE = 1_000_000  # a sandbox runs as UID_BASE + its pid: no two live sandboxes share a user
PRIVATE_TMPFS = "size=256m,nr_inodes=4096"  # the working directory: the only place a sandbox can fill
PR_SET_NO_NEW_PRIVS = 38


@dataclass(frozen=True)
class Limits:
    cpu_s: float = 60.0             # RLIMIT_CPU: a busy loop dies even if the wall-clock timer fails
    address_space_gb: float = 16.0  # RLIMIT_AS: a memory bomb gets MemoryError, not the machine
    file_size_mb: float = 64.0      # RLIMIT_FSIZE: no filling the disk
    open_files: int = 256           # RLIMIT_NOFILE


def apply_limits(limits: Limits) -> None:
    for which, value in ((resource.RLIMIT_CPU, int(limits.cpu_s) + 1),
                         (resource.RLIMIT_AS, int(limits.address_space_gb * 2**30)),
                         (resource.RLIMIT_FSIZE, int(limits.file_size_mb * 2**20)),
                         (resource.RLIMIT_NOFILE, limits.open_files)):
        _soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))  # hard = soft: the submission cannot raise it again


_libc = ctypes.CDLL(None, use_errno=True)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def sandbox_uid() -> int | None:
    """The unprivileged user this sandbox becomes, or None when the grader is not root."""
    return UID_BASE + os.getpid() if os.geteuid() == 0 else None


def _tmpfs(path: str, options: str) -> bool:
    return _libc.mount(b"tmpfs", path.encode(), b"tmpfs", 0, options.encode()) == 0


def _libraries() -> list[Path]:
    """What a sandbox imports from after it stops being root: Python's own folders (the standard
    library), the environment's site-packages and the grader package."""
    found = {sys.base_prefix, sys.prefix, *site.getsitepackages(), str(Path(__file__).resolve().parent)}
    return sorted(Path(os.path.realpath(p)) for p in found if os.path.isdir(p))


def _closed_above(targets: list[Path]) -> dict[Path, list[Path]]:
    """{a folder that other users cannot enter: the targets below it}, for targets that are themselves
    open (a Python installed under ``/root``, mode 700: the sandbox's user could import nothing the fork
    server had not imported already). Sorted targets: one below another is covered by its bind."""
    plan: dict[Path, list[Path]] = {}
    for target in targets:
        if not os.stat(target).st_mode & 0o005:
            continue  # closed itself: a bind mount cannot open it
        for folder in reversed(target.parents):  # from / down
            if not os.stat(folder).st_mode & 0o001:
                if not any(target.is_relative_to(t) for t in plan.get(folder, [])):
                    plan.setdefault(folder, []).append(target)
                break
    return plan


def _open_libraries() -> list[str]:
    """In a new mount namespace, as root: cover each closed folder above the libraries with an empty
    tmpfs that anyone may enter, and bind the libraries back at their own paths, so lazy imports work
    after the sandbox drops root; what else the closed folder holds stays out of sight."""
    opened = []
    for closed, targets in _closed_above(_libraries()).items():
        fds = [os.open(t, os.O_PATH | os.O_CLOEXEC) for t in targets]  # reachable once covered
        try:
            if not _tmpfs(str(closed), "size=4k,nr_inodes=256,mode=0755"):
                continue
            for target, fd in zip(targets, fds):
                target.mkdir(parents=True, exist_ok=True)
                source = f"/proc/self/fd/{fd}".encode()
                if _libc.mount(source, str(target).encode(), None, MS_BIND | MS_REC, None) == 0:
                    opened.append(str(target))
        finally:
            for fd in fds:
                os.close(fd)
    return opened


def network_namespace() -> int | None:
    """A new network namespace with only loopback, up: a file descriptor that keeps it, or None where
    the kernel refuses. The fork server makes one per grader process, and that grader's sandboxes enter
    it (``private_namespaces``): creating and tearing down one per sandbox costs the kernel ~5 ms of
    locked work each (rtnl, RCU), mostly waiting: about a tenth of a ``--jobs 1`` batch's time. Graders
    that run at once never share one; a grader's consecutive sandboxes do, and the grader kills
    everything one started before grading the next exercise (``sandbox.sweep``). Call it only in a
    single-threaded process: the caller enters the new namespace for a moment and then returns to its
    own."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            return None
        try:
            fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _loopback_up()
            except OSError:
                pass  # no loopback device: still no network, and gloo fails with a clear error
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns() back to the fork server's network namespace failed")
    finally:
        os.close(own)
    return fd


def private_namespaces(hide: list[Path], workdir: Path, netns: int | None) -> list[str]:
    """Enter the network namespace ``netns`` (see ``network_namespace``) and a new mount namespace, if
    permitted; returns what is in force."""
    in_force = []
    if netns is not None and _libc.setns(netns, CLONE_NEWNET) == 0:
        in_force.append("its grader's network namespace (loopback only)")
    if _libc.unshare(CLONE_NEWNS) == 0:
        _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
        opened = _open_libraries()
        if opened:
            in_force.append("libraries readable below closed folders: " + ", ".join(opened))
        hidden = [p for p in hide if p.exists() and _tmpfs(str(p), "size=4k,mode=0555")]
        if hidden:
            in_force.append("mount namespace hiding " + ", ".join(p.name for p in hidden))
        uid = sandbox_uid()
        owner = f",uid={uid},gid={uid}" if uid is not None else ""
        if _tmpfs(str(workdir), f"{PRIVATE_TMPFS},mode=0700{owner}"):
            _tmpfs("/dev/shm", "size=64m,nr_inodes=1024,mode=1777")  # the other place anyone may write
            in_force.append("private size-limited tmpfs working directory")
    return in_force


def drop_privileges(workdir: Path) -> list[str]:
    """As root: become this sandbox's own unprivileged user, for good. No capabilities means no setns,
    no mounts, no signals, ptrace or pidfd_getfd on other users' processes (the grader, the fork
    server, other sandboxes) and no writing what only root may write; RLIMIT_NPROC caps its tasks
    however they are started (a libc fork bomb), since no other process shares its uid."""
    uid = sandbox_uid()
    if uid is None:
        return []
    if os.stat(workdir).st_uid != uid:  # no private tmpfs (no mount namespace): hand the folder over
        os.chown(workdir, uid, uid)
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_TASKS, MAX_TASKS))
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # from root to non-root with all three ids: every capability is gone
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    return [f"unprivileged user {uid} (no capabilities, no_new_privs, at most {MAX_TASKS} tasks)"]


def available_isolation() -> list[str]:
    """What a sandbox forked here will get: tried in a throwaway child (unshare is per process)."""
    pid = os.fork()
    if pid == 0:
        code = (_libc.unshare(CLONE_NEWNET) == 0) | (_libc.unshare(CLONE_NEWNS) == 0) << 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.WEXITSTATUS(status)
    found = ["own session and process group", "fork-server subreaper (no leftover processes)",
             "rlimits (cpu, address space, file size, open files)", "audit hook"]
    if code & 1:
        found.append("network namespace of its grader process (loopback only)")
    if code & 2:
        found.append("mount namespace (solutions, tests, hidden tests and .git hidden; private tmpfs "
                     "working directory)")
    if os.geteuid() == 0:
        found.append(f"unprivileged user per sandbox (no capabilities, no_new_privs, at most {MAX_TASKS} tasks)")
    return found


def install_audit_hook(hidden: list[Path], writable: list[Path], kit: Path) -> None:
    """Refuse what a submission has no business doing; raised errors name the refused action."""
    own_group = os.getpgid(0)
    hidden_prefixes = tuple(str(p) + os.sep for p in hidden) + tuple(str(p) for p in hidden)
    writable_prefixes = tuple(str(p) + os.sep for p in writable) + ("/dev/null", "/dev/shm/")
    kit_prefix = str(kit) + os.sep  # never writable, even when the kit itself lives under /tmp
    forks = mmap.mmap(-1, 8)  # shared with every descendant: a fork bomb's children count too

    def refuse(what: str) -> None:
        raise PermissionError(f"sandbox: {what} is not allowed while grading")

    def hook(event: str, args: tuple) -> None:
        if event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "pty.spawn"):
            refuse(f"starting a program ({event})")
        elif event == "os.fork":
            count = int.from_bytes(forks[:8], "little") + 1
            forks[:8] = count.to_bytes(8, "little")
            if count > MAX_FORKS:
                refuse(f"more than {MAX_FORKS} processes")
        elif event in ("os.kill", "os.killpg"):
            pid = args[0]
            target = pid if event == "os.killpg" else _group_of(pid)
            if pid <= 0 or target != own_group:
                refuse("signalling a process outside the sandbox")
        elif event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"):
            address = args[1] if len(args) > 1 else None
            if isinstance(address, tuple) and address and not _loopback(address[0]):
                refuse(f"network access to {address[0]}")
        elif event == "open" and isinstance(args[0], (str, bytes)):
            path = os.path.realpath(os.fsdecode(args[0]))  # through links, /proc/self/root, //
            if path.startswith(hidden_prefixes):
                refuse(f"reading {path}")
            mode = args[1] if isinstance(args[1], str) else ""
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            writing = any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            if writing and (not path.startswith(writable_prefixes) or path.startswith(kit_prefix)):
                refuse(f"writing {path}")
        elif event in ("os.rename", "os.link", "os.symlink", "os.remove", "os.rmdir", "os.mkdir",
                       "os.truncate", "os.chmod", "os.chown", "os.utime", "shutil.rmtree"):
            for target in args[:2]:
                real = os.path.realpath(os.fsdecode(target)) if isinstance(target, (str, bytes)) else None
                if real is not None and (not real.startswith(writable_prefixes) or real.startswith(kit_prefix)):
                    refuse(f"{event} on {os.fsdecode(target)}")
        elif event in ("gc.get_objects", "gc.get_referrers", "gc.get_referents", "ctypes.dlopen"):
            refuse(event)

    sys.addaudithook(hook)


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _loopback(host) -> bool:
    return isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1", ""))
