"""``dlkata gradescope OUT.zip``: an autograder bundle per Gradescope's documented contract.

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once to build the image, then
``/autograder/run_autograder`` per submission with the learner's files in ``/autograder/submission`` and
expects ``/autograder/results/results.json``. The bundle carries the kit (engine, hidden tests,
exercises; no solutions, no mutants). ``AUTOGRADER_ROOT`` replaces ``/autograder`` (tests use a stand-in).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from grader.catalog import kit_root

SETUP_SH = """#!/usr/bin/env bash
# Gradescope image build: Python, torch (CPU build) and the kit.
set -euo pipefail
cd "${AUTOGRADER_ROOT:-/autograder}/source"
apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip >/dev/null || true
python3 -m venv .venv
.venv/bin/pip install --quiet "torch>=2.2" --index-url https://download.pytorch.org/whl/cpu \\
  || .venv/bin/pip install --quiet "torch>=2.2"
.venv/bin/pip install --quiet -e .
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# One Gradescope submission: lay the learner's files out as <id>/<id>.py (flat <id>.py files are
# accepted too), grade with the hidden tests, write results.json.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
PY="${DLKATA_PYTHON:-$SOURCE/.venv/bin/python}"
WORK="$(mktemp -d)"
"$PY" -m grader.classroom.gradescope_layout "$ROOT/submission" "$WORK/submission"
mkdir -p "$ROOT/results"
cd "$WORK"
DLKATA_KIT="$SOURCE" DLKATA_STATE_DIR="$WORK/state" "$PY" -m grader grade "$WORK/submission" --allow-empty \\
  --format gradescope --output "$ROOT/results/results.json"
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then
  echo '{"score": 0, "output": "The autograder could not grade this submission.", "tests": []}' > "$ROOT/results/results.json"
fi
exit 0
"""

BUNDLE_DIRS = ("grader", "exercises")
BUNDLE_FILES = ("pyproject.toml", "README.md")


def bundle(out: Path) -> Path:
    root = kit_root()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for script, text in (("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER)):
            info = zipfile.ZipInfo(script)
            info.external_attr = 0o755 << 16
            zf.writestr(info, text)
        for name in BUNDLE_FILES:
            zf.write(root / name, name)
        for folder in BUNDLE_DIRS:
            for path in sorted((root / folder).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    zf.write(path, str(path.relative_to(root)))
    return out
