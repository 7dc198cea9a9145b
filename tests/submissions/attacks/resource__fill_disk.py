"""Resource attack: fill the disk with many files, each under the 64 MiB file-size limit, in every folder
anyone may write to (/tmp, /var/tmp, /dev/shm, the working directory), 400 MiB in all."""
import os as _os
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]
_chunk = b"\0" * (16 << 20)
_landed: dict[str, int] = {}
for _folder in ("/tmp", "/var/tmp", "/dev/shm", _os.getcwd()):
    for _i in range(25):
        try:
            with open(_os.path.join(_folder, f"dlkata-fill-{_os.getpid()}-{_i}"), "wb") as _f:
                _f.write(_chunk)
        except OSError:
            break
        _landed[_folder] = _landed.get(_folder, 0) + len(_chunk)
_shared = {f: n for f, n in _landed.items() if f in ("/tmp", "/var/tmp")}
_private = sum(n for f, n in _landed.items() if f not in _shared)
if _shared or _private > 320 << 20:  # the private tmpfs mounts hold 256 + 64 MiB
    with open(_HERE / "markers" / "resource__fill_disk", "a") as _m:
        _m.write(f"wrote {_landed} (MiB counts in bytes) past the sandbox's private, size-limited folders\n")
raise NotImplementedError("the disk is filling")
