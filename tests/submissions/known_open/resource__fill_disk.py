"""Resource attack: fill the disk with many files, each under the 64 MiB file-size limit, outside the
sandbox's private working directory (which the grader removes) but in the writable temporary folder."""
import os as _os
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]
_fill = _HERE / "fill"
_total = 0
try:
    _fill.mkdir(exist_ok=True)
    _chunk = b"\0" * (16 << 20)
    for _i in range(6):  # 96 MiB here; a real bomb loops until ENOSPC, or uses /dev/shm (RAM)
        with open(_fill / f"part{_i}", "wb") as _f:
            _f.write(_chunk)
        _total += len(_chunk)
except OSError:
    pass
if _total > 64 << 20:
    with open(_HERE / "markers" / "resource__fill_disk", "a") as _m:
        _m.write(f"wrote {_total >> 20} MiB outside the private working directory, past the 64 MiB file limit\n")
raise NotImplementedError("the disk is filling")
