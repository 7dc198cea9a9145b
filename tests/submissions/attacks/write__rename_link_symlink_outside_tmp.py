"""Stray files: write in the sandbox's working directory, then move or link the file out of the temporary
folders with os.rename, os.link, os.symlink and os.mkdir (no "open" audit event for the destination)."""
import os as _os
from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parents[2]
_outside = (_HERE / "outside").read_text().strip()
for _name, _move in (("renamed.txt", _os.rename), ("hardlinked.txt", _os.link)):
    try:
        with open(f"staged-{_name}", "w") as _f:
            _f.write("DLKATA-FAKE written by the sandbox\n")
        _move(f"staged-{_name}", f"{_outside}/{_name}")
    except OSError:
        pass
for _call in (lambda: _os.symlink("/etc/passwd", f"{_outside}/symlinked.txt"),
              lambda: _os.mkdir(f"{_outside}/made_dir")):
    try:
        _call()
    except OSError:
        pass
raise NotImplementedError("files are out")
