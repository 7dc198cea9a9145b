"""The flakiness soak: does any hidden suite's verdict depend on the data it happened to draw?

    python bench/soak.py [--seeds 20] [--mutant-seeds N] [--jobs 2] [--exercise ID ...] [--keep DIR]

Grades every exercise's reference, its correct variants and each of its mutants under data seeds
1..``--seeds`` (``DLKATA_SEED`` shifts every seed the hidden tests draw with and lets hypothesis draw at
random, seeded the same way; seed 0, the graded data, is what the kit's own tests check on every run). A
verdict is "full marks" for the reference and a correct variant and "loses points" for a mutant; the
soak passes when no verdict differs from that under any seed. ``--mutant-seeds`` grades the mutants
under only the first N seeds (default: all; the mutants are most of the cost, ~10 CPU-minutes a seed).
Probes run inline (the sandbox changes no data), one worker process per seed,
``--jobs`` at a time; each seed's verdicts are kept as ``DIR/seed-N.json`` as it finishes (a seed already
there is not graded again). Prints one ``name: value`` line per figure and, for every changed verdict,
the seed and the tests that failed; exits 1 if any verdict changed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

KIT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(KIT))


def sources(exercise_id: str) -> list[tuple[str, Path]]:
    """(name, source file): the reference, the correct variants, then the mutants."""
    correct = sorted((KIT / "tests" / "variants" / exercise_id).glob("*.py"))
    mutants = sorted((KIT / "tests" / "mutants" / exercise_id).glob("*.py"))
    return [("reference", KIT / "solutions" / exercise_id / f"{exercise_id}.py"),
            *((f"correct {v.stem}", v) for v in correct), *((f"mutant {m.stem}", m) for m in mutants)]


def must_keep_full_marks(name: str) -> bool:
    return not name.startswith("mutant ")


def worker(seed: int, mutants: bool, ids: list[str]) -> None:
    """Grade the references and correct variants of ``ids`` (and their mutants if ``mutants``) under data
    seed ``seed``, which is already in the environment; print the verdicts as JSON."""
    from grader import catalog
    from grader.runner import grade_exercise

    verdicts = {}
    with tempfile.TemporaryDirectory(prefix="dlkata-soak-") as tmp:
        for exercise_id in ids:
            exercise = catalog.get(exercise_id)
            for name, source in sources(exercise_id):
                if not (mutants or must_keep_full_marks(name)):
                    continue
                root = Path(tmp) / f"{exercise_id}-{name.replace(' ', '-')}"
                (root / exercise_id).mkdir(parents=True)
                shutil.copy(source, root / exercise_id / f"{exercise_id}.py")
                extra = [f"--hypothesis-seed={seed}"] + ([] if must_keep_full_marks(name) else ["-x"])
                result = grade_exercise(exercise, root, isolation="inline", extra=extra)
                failed = [t.name for t in result.tests if t.outcome != "passed"]
                verdicts[f"{exercise_id}: {name}"] = {"full": result.score == result.max_score, "failed": failed}
    print(json.dumps(verdicts))


def run_seed(seed: int, mutants: bool, ids: list[str], keep: Path) -> dict:
    kept = keep / f"seed-{seed}{'' if mutants else '-references'}.json"
    if kept.is_file():
        return json.loads(kept.read_text(encoding="utf-8"))
    env = {**os.environ, "DLKATA_SEED": str(seed), "PYTHONPATH": str(KIT)}
    done = subprocess.run([sys.executable, __file__, "--worker", str(seed), str(int(mutants)), *ids], cwd=KIT, env=env,
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"seed {seed}: the worker exited {done.returncode}:\n{done.stderr[-3000:]}")
    verdicts = json.loads(done.stdout.strip().splitlines()[-1])
    kept.write_text(json.dumps(verdicts), encoding="utf-8")
    print(f"soak: seed {seed} graded", file=sys.stderr, flush=True)
    return verdicts


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        worker(int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="data seeds 1..N (default 20)")
    parser.add_argument("--mutant-seeds", type=int, help="grade the mutants under the first N seeds only")
    parser.add_argument("--jobs", type=int, default=2, help="seeds graded at once (default 2)")
    parser.add_argument("--exercise", action="append", help="only this exercise (repeatable)")
    parser.add_argument("--keep", type=Path, help="folder for each seed's verdicts (default: a temporary one)")
    args = parser.parse_args()
    from grader import catalog

    ids = args.exercise or [e.id for e in catalog.catalog()]
    started = time.perf_counter()
    seeds = range(1, args.seeds + 1)
    with tempfile.TemporaryDirectory(prefix="dlkata-soak-") as tmp, ThreadPoolExecutor(args.jobs) as pool:
        keep = args.keep or Path(tmp)
        keep.mkdir(parents=True, exist_ok=True)
        mutant_seeds = args.seeds if args.mutant_seeds is None else args.mutant_seeds
        runs = dict(zip(seeds, pool.map(lambda s: run_seed(s, s <= mutant_seeds, ids, keep), seeds)))
    graded = max(runs.values(), key=len)
    changed = []
    for key in graded:
        expected = must_keep_full_marks(key.split(": ", 1)[1])  # a mutant never has full marks
        for seed, verdicts in runs.items():
            if key in verdicts and verdicts[key]["full"] != expected:
                changed.append(f"{key}, seed {seed}: {'full marks' if not expected else 'failed'} "
                               f"{verdicts[key]['failed']}")
    print(f"soak_seeds: {args.seeds} (mutants: {mutant_seeds})")
    mutant_count = sum(not must_keep_full_marks(key.split(": ", 1)[1]) for key in graded)
    print(f"soak_variants: {len(graded)} ({len(ids)} references, {len(graded) - len(ids) - mutant_count} "
          f"correct variants, {mutant_count} mutants)")
    print(f"soak_grades: {sum(len(v) for v in runs.values())}")
    print(f"soak_changed_verdicts: {len(changed)}")
    print(f"soak_s: {time.perf_counter() - started:.0f}")
    for line in changed:
        print(f"changed: {line}")
    sys.exit(1 if changed else 0)


if __name__ == "__main__":
    main()
