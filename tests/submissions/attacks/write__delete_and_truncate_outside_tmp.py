"""Stray writes: change files outside the temporary folders without opening them (os.truncate, os.remove,
os.chmod, os.utime have no "open" audit event), on a victim file the test puts in a folder outside /tmp;
the same calls would reach the kit's own files."""
import os as _os
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]
_outside = (_HERE / "outside").read_text().strip()
for _call in (lambda: _os.chmod(f"{_outside}/victim.txt", 0o777),
              lambda: _os.utime(f"{_outside}/victim.txt", (0, 0)),
              lambda: _os.truncate(f"{_outside}/victim.txt", 3),
              lambda: _os.remove(f"{_outside}/victim.txt")):
    try:
        _call()
    except OSError:
        pass
raise NotImplementedError("files are damaged")
