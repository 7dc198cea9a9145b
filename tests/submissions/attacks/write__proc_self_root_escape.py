"""Stray files: write outside the temporary folders through /proc/self/root/..., which starts with the
audit hook's allowed prefix "/proc/self" and is the whole file system (here: a folder the test names)."""
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]
_outside = (_HERE / "outside").read_text().strip()
for _path in (f"{_outside}/direct.txt", f"/proc/self/root{_outside}/via_proc_self_root.txt",
              f"/dev/shm/../..{_outside}/via_dev_shm.txt"):
    try:
        with open(_path, "w") as _f:
            _f.write("DLKATA-FAKE written by the sandbox\n")
    except OSError:
        pass
raise NotImplementedError("files are out")
