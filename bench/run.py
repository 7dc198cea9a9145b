"""The kit's benchmark: the three things users wait for, measured side by side in one run.

    python bench/run.py [--quick]

Prints one ``name: value`` line per figure on stdout (progress goes to stderr):

* ``isolation_overhead``: a full grade (``dlkata grade``: hidden tests, every probe in a sandbox forked
  from the fork server) over the same grade in one plain process with no sandbox (the probes inline),
  each in a fresh process, runs interleaved (3 pairs; the ratio of their sums). Goal <= 1.3.
  ``isolation_overhead_s``: the difference of their medians, in seconds. Then ``suite_s.<id>``: each
  hidden suite's wall time in the isolated grade, slowest first (goal: every suite under 20 s).
* ``check_vs_import_torch``: ``dlkata check softmax`` on the reference over ``python -c "import torch"``,
  interleaved, medians. Goal <= 2. ``watch_react_s``: ``dlkata watch`` from a save to the new verdict,
  after its first run (goal < 1 s).
* ``batch_speedup_jobs2``: ``grade-batch --jobs 1`` over ``--jobs 2`` on the same learners, medians of 4
  interleaved runs each (goal >= 1.7 on two cores; ``batch_jobs1_cores`` and ``batch_jobs2_cores``: the
  machine's busy CPU over each run's wall time, which bounds it; the same batch has taken from 31.5 to 40
  CPU-s on this machine within minutes, so one pair of runs can land anywhere from 1.3 to 1.9), and ``nbgrader_throughput_ratio``: nbgrader's ``autograde`` on the notebooks that
  ``dlkata nbgrader`` exports for the same learners over ``grade-batch --jobs 2`` (goal >= 5).

Batch learners each hand in the softmax exercise (``BATCH_EXERCISES``), cycling through its reference,
stub and mutants. ``--quick`` (about a minute and a half on an idle two-core machine) grades two
exercises in the full grade, 4 learners in the batch and 1 of them with nbgrader (throughput compares
seconds per learner), and skips the watch; at that size the batch figures are dominated by starting the
warm graders, so the goals are judged on the full run: every exercise in the full grade, 50 learners in
the batch, all of them with nbgrader too. Everything runs in temporary folders; the kit is not touched.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

KIT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(KIT))

PY = sys.executable
QUICK_EXERCISES = ("softmax", "generators")
BATCH_EXERCISES = ("softmax",)


def log(*parts) -> None:
    print("bench:", *parts, file=sys.stderr, flush=True)


def figure(name: str, value) -> None:
    if isinstance(value, float):
        value = f"{value:.3f}"
    print(f"{name}: {value}", flush=True)


def env(tmp: Path, **extra: str) -> dict:
    path = f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # nbgrader shells out to alembic
    return {**os.environ, "PATH": path, "PYTHONPATH": str(KIT), "DLKATA_STATE_DIR": str(tmp / "state"),
            "DLKATA_LANG": "en", **extra}


def timed(cmd: list[str], tmp: Path, cwd: Path | None = None, timeout: float = 3600) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd or KIT, env=env(tmp), capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: `check` of a failing test, `grade --min-score`
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return seconds


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy so far, all cores (``/proc/stat``)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def dlkata() -> list[str]:
    script = Path(PY).parent / "dlkata"
    return [str(script)] if script.is_file() else [PY, "-m", "grader"]


# -- 1. isolation overhead -----------------------------------------------------------------------

def baseline_child(root: str, output: str, ids: list[str]) -> None:
    """The baseline: the same hidden tests in this one plain process, no sandbox (``isolation="inline"``)."""
    from grader import catalog
    from grader.runner import grade_submission

    result = grade_submission(Path(root), tuple(catalog.get(i) for i in ids), isolation="inline")
    Path(output).write_text(result.to_json(), encoding="utf-8")


def bench_isolation(tmp: Path, ids: list[str], pairs: int) -> None:
    solutions = KIT / "solutions"
    isolated, baseline, suites, scores = [], [], {}, set()
    selection = [a for i in ids for a in ("--exercise", i)]
    for n in range(pairs):
        order = ("isolated", "baseline") if n % 2 == 0 else ("baseline", "isolated")
        for kind in order:
            out = tmp / f"{kind}{n}.json"
            if kind == "isolated":
                cmd = [*dlkata(), "grade", str(solutions), *selection, "--format", "json", "--output", str(out)]
            else:
                cmd = [PY, str(Path(__file__).resolve()), "--baseline-child", str(solutions), str(out), *ids]
            seconds = timed(cmd, tmp)
            (isolated if kind == "isolated" else baseline).append(seconds)
            doc = json.loads(out.read_text(encoding="utf-8"))
            scores.add(tuple((e["id"], e["score"]) for e in doc["exercises"]))
            if kind == "isolated":
                for e in doc["exercises"]:
                    suites[e["id"]] = min(suites.get(e["id"], 1e9), e["seconds"])
            log(f"full grade of {len(ids)} exercises, {kind}: {seconds:.1f} s")
    figure("grade_isolated_s", statistics.median(isolated))
    figure("grade_baseline_s", statistics.median(baseline))
    figure("isolation_overhead", sum(isolated) / sum(baseline))
    figure("isolation_overhead_s", statistics.median(isolated) - statistics.median(baseline))
    figure("isolation_scores_match", len(scores) == 1)
    for exercise_id, seconds in sorted(suites.items(), key=lambda kv: -kv[1]):
        figure(f"suite_s.{exercise_id}", seconds)
    figure("suite_max_s", max(suites.values()))


# -- 2. feedback loop ----------------------------------------------------------------------------

def bench_check(tmp: Path, pairs: int) -> None:
    torch_s, check_s = [], []
    for n in range(pairs):
        order = ("torch", "check") if n % 2 == 0 else ("check", "torch")
        for kind in order:
            if kind == "torch":
                torch_s.append(timed([PY, "-c", "import torch"], tmp))
            else:
                check_s.append(timed([*dlkata(), "check", "softmax", str(KIT / "solutions")], tmp))
    figure("import_torch_s", statistics.median(torch_s))
    figure("check_s", statistics.median(check_s))
    figure("check_vs_import_torch", statistics.median(check_s) / statistics.median(torch_s))


def bench_watch(tmp: Path, saves: int) -> None:
    """``dlkata watch softmax`` on the stub (it fails, so the watch waits); each save of a changed file
    is timed until the watch says it is waiting again, i.e. has shown the new verdict."""
    root = tmp / "watch"
    (root / "softmax").mkdir(parents=True)
    target = root / "softmax" / "softmax.py"
    stub = (KIT / "exercises" / "softmax" / "softmax.py").read_text(encoding="utf-8")
    target.write_text(stub, encoding="utf-8")
    proc = subprocess.Popen([*dlkata(), "watch", "softmax", str(root)], cwd=tmp, env=env(tmp),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    waits: list[float] = []
    seen = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            if "Waiting for you to save" in line:
                waits.append(time.perf_counter())
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reactions = []
    try:
        if not seen.wait(120):
            figure("watch_react_s", "n/a (no watch output)")
            return
        for n in range(saves):
            time.sleep(1.0)  # the watcher starts after the first run
            seen.clear()
            saved = time.perf_counter()
            target.write_text(stub + f"\n# save {n}\n", encoding="utf-8")
            if not seen.wait(120):
                break
            reactions.append(waits[-1] - saved)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    figure("watch_react_s", statistics.median(reactions) if reactions else "n/a")


# -- 3. batch grading ----------------------------------------------------------------------------

def classroom(tmp: Path, count: int, ids: tuple[str, ...]) -> tuple[Path, dict[str, dict[str, str]]]:
    """``count`` learners cycling through the reference, the stub and each mutant of every exercise."""
    folder = tmp / "class"
    sources: dict[str, dict[str, str]] = {}
    for i in range(count):
        learner = f"learner{i:03d}"
        sources[learner] = {}
        for exercise_id in ids:
            variants = [KIT / "solutions" / exercise_id / f"{exercise_id}.py",
                        KIT / "exercises" / exercise_id / f"{exercise_id}.py",
                        *sorted((KIT / "tests" / "mutants" / exercise_id).glob("*.py"))]
            text = variants[i % len(variants)].read_text(encoding="utf-8")
            target = folder / learner / exercise_id / f"{exercise_id}.py"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            sources[learner][exercise_id] = text
    return folder, sources


def gradebook(path: Path) -> dict[str, dict]:
    return {row["learner"]: row for row in csv.DictReader(path.open(encoding="utf-8"))}


def bench_batch(tmp: Path, count: int, ids: tuple[str, ...], repeats: int, nbgrader: int) -> None:
    """``grade-batch`` at --jobs 1 and 2 (interleaved), then nbgrader on the first ``nbgrader`` learners."""
    folder, sources = classroom(tmp, count, ids)
    selection = [a for i in ids for a in ("--exercise", i)]
    times: dict[int, list[float]] = {1: [], 2: []}
    cores: dict[int, list[float]] = {1: [], 2: []}  # busy CPU over wall: how many cores the run kept busy
    books = {}
    for n in range(repeats):
        for jobs in ((2, 1) if n % 2 == 0 else (1, 2)):
            out = tmp / f"grades-j{jobs}-{n}.csv"
            busy = busy_cpu_s()
            seconds = timed([*dlkata(), "grade-batch", str(folder), "--jobs", str(jobs), *selection,
                             "--output", str(out)], tmp)
            times[jobs].append(seconds)
            cores[jobs].append((busy_cpu_s() - busy) / seconds)
            books[jobs] = gradebook(out)
            log(f"grade-batch of {count} learners, --jobs {jobs}: {seconds:.1f} s, {cores[jobs][-1]:.2f} cores busy")
    jobs1, jobs2 = statistics.median(times[1]), statistics.median(times[2])
    figure("batch_learners", count)
    figure("batch_jobs1_s", jobs1)
    figure("batch_jobs2_s", jobs2)
    figure("batch_jobs1_cores", statistics.median(cores[1]))
    figure("batch_jobs2_cores", statistics.median(cores[2]))
    figure("batch_speedup_jobs2", jobs1 / jobs2)
    strip = lambda book: {k: {c: v for c, v in row.items() if c != "error"} for k, row in book.items()}
    figure("batch_gradebooks_match", strip(books[1]) == strip(books[2]))
    if nbgrader:
        subset = dict(list(sources.items())[:nbgrader])
        bench_nbgrader(tmp, subset, ids, jobs1 / count, jobs2 / count, books[2])


def bench_nbgrader(tmp: Path, sources: dict[str, dict[str, str]], ids: tuple[str, ...], jobs1: float,
                   jobs2: float, book: dict[str, dict]) -> None:
    """nbgrader's autograde of ``sources``; its seconds per learner over grade-batch's (``jobs1``/``jobs2``)."""
    try:
        import nbformat
        from nbgrader.api import Gradebook
    except ImportError:
        figure("nbgrader_throughput_ratio", "n/a (nbgrader is not installed)")
        return
    course = tmp / "course"
    selection = [a for i in ids for a in ("--exercise", i)]
    timed([*dlkata(), "nbgrader", str(course), "--assignment", "ps1", *selection], tmp)
    timed([PY, "-m", "nbgrader", "generate_assignment", "ps1", "--force"], tmp, cwd=course)
    for learner, files in sources.items():
        for exercise_id, text in files.items():
            nb = nbformat.read(course / "release" / "ps1" / f"{exercise_id}.ipynb", as_version=4)
            nb.cells[1].source = f"%%writefile {exercise_id}.py\n" + text
            target = course / "submitted" / learner / "ps1" / f"{exercise_id}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)
    seconds = timed([PY, "-m", "nbgrader", "autograde", "ps1", "--force", "--create"], tmp, cwd=course,
                    timeout=4 * 3600)
    log(f"nbgrader autograde of {len(sources)} learners: {seconds:.1f} s")
    per_learner = seconds / len(sources)
    figure("nbgrader_learners", len(sources))
    figure("nbgrader_autograde_s", seconds)
    figure("batch_jobs2_s_per_learner", jobs2)
    figure("nbgrader_s_per_learner", per_learner)
    figure("nbgrader_throughput_ratio", per_learner / jobs2)
    figure("nbgrader_throughput_ratio_jobs1", per_learner / jobs1)
    db = Gradebook(f"sqlite:///{course / 'gradebook.db'}")
    try:
        same = all(abs(db.find_submission("ps1", learner).score - float(book[learner]["score"])) < 1e-6
                   for learner in sources)
    finally:
        db.close()
    figure("nbgrader_scores_match", same)


def main() -> None:
    if sys.argv[1:2] == ["--baseline-child"]:
        baseline_child(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two exercises and 4 learners (about a minute)")
    parser.add_argument("--learners", type=int, help="learners in the batch figures (default 4 quick, 50 full)")
    parser.add_argument("--only", choices=("isolation", "check", "batch"), action="append",
                        help="measure only these figures (repeatable)")
    parser.add_argument("--nbgrader-learners", type=int,
                        help="learners nbgrader autogrades, the first of the batch's (default 1 quick, all full; 0: skip)")
    args = parser.parse_args()
    from grader import catalog

    ids = list(QUICK_EXERCISES) if args.quick else [e.id for e in catalog.catalog()]
    learners = args.learners or (4 if args.quick else 50)
    only = set(args.only or ("isolation", "check", "batch"))
    started = time.perf_counter()
    figure("date", time.strftime("%Y-%m-%d %H:%M %Z"))
    figure("machine", f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    import torch

    figure("torch", torch.__version__)
    with tempfile.TemporaryDirectory(prefix="dlkata-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if "check" in only:
            bench_check(tmp, pairs=2 if args.quick else 5)
            if not args.quick:
                bench_watch(tmp, saves=5)
        if "isolation" in only:
            bench_isolation(tmp, ids, pairs=1 if args.quick else 3)
        if "batch" in only:
            nb = args.nbgrader_learners if args.nbgrader_learners is not None else (1 if args.quick else learners)
            bench_batch(tmp, learners, BATCH_EXERCISES, repeats=1 if args.quick else 4, nbgrader=min(nb, learners))
        shutil.rmtree(tmp / "state", ignore_errors=True)
    figure("load_average_end", f"{os.getloadavg()[0]:.1f}")
    figure("bench_s", time.perf_counter() - started)


if __name__ == "__main__":
    main()
