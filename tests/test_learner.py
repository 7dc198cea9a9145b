"""The learner's tools: --lang, watch, progress, reset, explain, the HTML report (rendered in headless
Chromium) and the mock interview. Workspaces are tmp folders; the state lives in a tmp DLKATA_STATE_DIR."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import catalog
from grader.cli import main
from grader.interrupt import ctrl_c_kept
from grader.learner import figures, i18n, mock, stubs, watch
from grader.results import ExerciseResult, GradeResult
from grader.results import TestResult as Outcome  # a "Test*" name would be collected by pytest
from grader.runner import run_pytest
from grader.workspace import State
from tests.conftest import KIT, submission_with

SOFTMAX = catalog.get("softmax")
REFERENCE = KIT / "solutions" / "softmax" / "softmax.py"
STUB = KIT / "exercises" / "softmax" / "softmax.py"
LOCALE_VARS = ("DLKATA_LANG", "LC_ALL", "LC_MESSAGES", "LANG")
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).is_file()), None)
# every F and B once per stage, but each stage starts with a backward: it deadlocks
WRONG_MEGATRON = '''
def one_f_one_b_schedule(num_stages, num_microbatches):
    return [[("B", mb) for mb in range(num_microbatches)] + [("F", mb) for mb in range(num_microbatches)]
            for _ in range(num_stages)]
'''


@pytest.fixture(autouse=True)
def workspace_state(tmp_path, monkeypatch):
    """Every test: its own state folder, English unless it says otherwise, no --lang left over."""
    monkeypatch.setenv("DLKATA_STATE_DIR", str(tmp_path / "state"))
    for name in LOCALE_VARS:
        monkeypatch.delenv(name, raising=False)
    i18n.set_lang(None)
    yield tmp_path / "state"
    i18n.set_lang(None)


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def result_of(*outcomes: str, message: str = "") -> ExerciseResult:
    tests = [Outcome(f"test_{i}", o, 1.0 if o == "passed" else 0.0, 1.0,
                        "" if o == "passed" else f"softmax.py raised ValueError: boom {i}\n  File \"softmax.py\", line 3")
             for i, o in enumerate(outcomes)]
    return ExerciseResult("softmax", SOFTMAX.title, 0.0, 10.0, tests, "graded" if not message else "error", message)


# -- language --------------------------------------------------------------------------------------

def test_lang_resolution_option_over_env_over_locale(monkeypatch):
    assert i18n.lang() == "en"
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert i18n.lang() == "zh"
    monkeypatch.setenv("LC_ALL", "en_US.UTF-8")  # LC_ALL outranks LANG
    assert i18n.lang() == "en"
    monkeypatch.setenv("DLKATA_LANG", "zh")
    assert i18n.lang() == "zh"
    i18n.set_lang("en")
    assert i18n.lang() == "en"
    assert set(i18n.MESSAGES) and all(set(m) == {"en", "zh"} for m in i18n.MESSAGES.values())


def test_show_and_hint_in_both_languages(monkeypatch):
    zh = (SOFTMAX.folder / "README.zh.md").read_text(encoding="utf-8")
    en = SOFTMAX.statement.read_text(encoding="utf-8")
    assert invoke("--lang", "zh", "show", "softmax").output.strip() == zh.strip()
    assert invoke("show", "softmax", "--lang", "zh").output.strip() == zh.strip()
    assert invoke("show", "softmax").output.strip() == en.strip()  # a group --lang does not stick
    first = invoke("hint", "softmax").output
    assert first.startswith("Hint 1/3 for softmax: ") and SOFTMAX.hints[0] in first
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    second = invoke("hint", "softmax").output
    assert "提示 2/3" in second and SOFTMAX.hints_zh[1] in second
    assert invoke("--lang", "en", "hint", "softmax").output.startswith("Hint 3/3")
    assert "全部显示" in invoke("hint", "softmax").output


# -- watch -----------------------------------------------------------------------------------------

class Scripted:
    """A stand-in for the public-test runner: the results it returns, in order, and what it was run on."""

    def __init__(self, *results):
        self.results, self.calls = list(results), []

    def __call__(self, exercise, root):
        self.calls.append(exercise.id)
        return self.results.pop(0)


def test_watch_shows_first_failure_and_hint_then_moves_on(tmp_path):
    root = submission_with(tmp_path, {"softmax": STUB, "megatron": KIT / "exercises" / "megatron" / "megatron.py",
                                      "newton": KIT / "exercises" / "newton" / "newton.py"})
    State().next_hint("softmax", SOFTMAX.hints)
    state = State()
    state.data["exercises"]["megatron"] = {"best_percent": 100.0, "last_percent": 100.0}  # solved: skipped
    target = root / "softmax" / "softmax.py"
    megatron_result = ExerciseResult("newton", "n", 0, 1, [Outcome("t", "not_implemented", 0, 1, "not yet")])
    run = Scripted(result_of("passed", "error", "failed"), result_of("passed", "passed"), megatron_result)
    lines: list[str] = []
    events = [{(watchfiles_change("modified"), str(root / "newton" / "newton.py"))},  # not the watched file
              {(watchfiles_change("modified"), str(target))}]
    outcome = watch.watch_loop(SOFTMAX, root, events, run=run, echo=lines.append, state=state)
    text = "\n".join(lines)
    assert outcome == "ended"
    assert run.calls == ["softmax", "softmax", "newton"]  # the unrelated save ran nothing; megatron is solved
    assert "1/3 public tests pass. First failure: test_1 (error)" in text
    assert "raised ValueError: boom 1" in text and 'File "softmax.py", line 3' in text
    assert "boom 2" not in text  # only the first failure
    assert "Hints shown: 1/3" in text and SOFTMAX.hints[0] in text
    assert "All 2 public tests of softmax pass" in text
    assert "next unsolved exercise: newton" in text
    assert State().data["public"] == {"softmax": True, "newton": False}


def test_watch_ctrl_c_and_broken_file(tmp_path):
    root = submission_with(tmp_path, {"softmax": STUB})

    def interrupted():
        yield {(watchfiles_change("modified"), str(root / "softmax" / "softmax.py"))}
        raise KeyboardInterrupt

    lines: list[str] = []
    run = Scripted(result_of(message="softmax.py has a syntax error at line 3: invalid syntax"),
                   result_of("failed"))
    i18n.set_lang("zh")
    assert watch.watch_loop(SOFTMAX, root, interrupted(), run=run, echo=lines.append) == "stopped"
    assert "softmax 暂时无法测试" in lines[2] and "syntax error at line 3" in lines[3]
    assert lines[-1] == "已停止监视。"


def watchfiles_change(name: str):
    import watchfiles

    return watchfiles.Change[name]


def test_watch_with_a_real_watcher_and_warm_sandboxes(tmp_path):
    """A real file write seen by watchfiles; the re-run, in sandboxes from the same warm fork server,
    sees the saved solution."""
    import watchfiles

    root = submission_with(tmp_path, {"softmax": STUB})
    stop = threading.Event()
    runs: list[ExerciseResult] = []

    def run(exercise, where):
        runs.append(watch.run_in_sandboxes(exercise, where))
        if len(runs) == 1:  # the stub checked: now save the solution
            threading.Timer(0.3, lambda: (root / "softmax" / "softmax.py").write_text(REFERENCE.read_text())).start()
            return runs[-1]
        stop.set()
        return runs[-1]

    changes = watchfiles.watch(root, watch_filter=watchfiles.PythonFilter(), stop_event=stop, rust_timeout=200,
                               yield_on_timeout=False, debounce=100)
    lines: list[str] = []
    started = time.monotonic()
    assert watch.watch_loop(SOFTMAX, root, changes, run=run, echo=lines.append) == "done"
    assert time.monotonic() - started < 120
    assert runs[0].tests and all(t.outcome != "passed" for t in runs[0].tests), runs[0]
    assert len(runs) == 2 and runs[1].tests and all(t.outcome == "passed" for t in runs[1].tests), runs[1]
    assert "Every exercise passes its public tests" in lines[-1]


def test_watch_command_exits_cleanly_on_ctrl_c(tmp_path, workspace_state):
    """SIGINT during or just after the first run (torch loading, pytest, the sandboxes, the watcher
    starting): the run is abandoned, one line said, exit status 0."""
    root = submission_with(tmp_path, {"softmax": STUB})
    child = subprocess.Popen([sys.executable, "-m", "grader", "watch", "softmax", str(root)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "DLKATA_STATE_DIR": str(workspace_state)},
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # not ignored, as under `&`
    try:
        seen = []
        for line in child.stdout:
            seen.append(line)
            if "running the public tests" in line:
                time.sleep(0.5)
                child.send_signal(signal.SIGINT)
                break
        rest, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, "".join(seen) + rest
    assert rest.strip().splitlines()[-1] == "Stopped watching." and "Traceback" not in rest


# -- Ctrl-C is never lost ---------------------------------------------------------------------------

@pytest.fixture
def default_sigint():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def press_ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(1)  # interrupted at once when SIGINT raises; the whole second when it is deferred


def test_a_ctrl_c_that_code_swallows_is_raised_again_as_the_block_ends(default_sigint):
    went_on = []
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_kept():
            try:
                press_ctrl_c()
            except KeyboardInterrupt:  # what pytest.main and torch's import do
                pass
            went_on.append(True)
    assert went_on and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_deferred_ctrl_c_lets_the_block_finish_then_stops(default_sigint):
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_kept(interrupt=False):
            press_ctrl_c()
    assert time.monotonic() - started >= 1


def test_a_keyboardinterrupt_raised_by_code_is_not_a_ctrl_c(default_sigint):
    finished = []
    with ctrl_c_kept():
        try:
            raise KeyboardInterrupt  # e.g. submission code in an inline grade: its own error
        except KeyboardInterrupt:
            pass
    finished.append(True)  # reached: the block raised nothing as it ended
    assert finished and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_is_passed_on_once_by_the_outermost_block(default_sigint):
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_kept():
            try:
                with ctrl_c_kept(interrupt=False):  # an import inside a run
                    press_ctrl_c()
            except KeyboardInterrupt:
                pass  # swallowed between the two blocks: the outer one raises it again
    with ctrl_c_kept():
        pass  # not again


def test_ctrl_c_during_a_pytest_run_stops_the_grade(tmp_path, default_sigint):
    test_file = tmp_path / "test_pressed.py"
    test_file.write_text("import os, signal, time\n\n"
                         "def test_pressed():\n    os.kill(os.getpid(), signal.SIGINT)\n    time.sleep(5)\n")
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):  # not an exercise scored as broken
        run_pytest(test_file, tmp_path, isolation="inline")
    assert time.monotonic() - started < 5


# -- progress and reset ----------------------------------------------------------------------------

def test_progress_counts_per_topic_with_best_scores(tmp_path, workspace_state):
    root = submission_with(tmp_path, {"softmax": REFERENCE, "newton": KIT / "exercises" / "newton" / "newton.py",
                                      "megatron": "def one_f_one_b_schedule(p, m):\n    return []\n"})
    state = State()
    state.record(GradeResult(str(root), [ExerciseResult("softmax", "", 10, 10), ExerciseResult("newton", "", 0, 10)]))
    state.record(GradeResult(str(root), [ExerciseResult("softmax", "", 2, 10)]))  # best stays 100
    out = invoke("progress", str(root)).output
    row = {line.split("│")[1].strip(): line for line in out.splitlines() if re.match(r"│\s+\d+\. ", line)}
    assert "solved" in row["3. softmax"] and "100%" in row["3. softmax"]
    assert "untouched" in row["1. newton"] and "0%" in row["1. newton"]  # graded 0, still the stub
    assert "attempted" in row["10. megatron"]  # code in it, never graded
    topics = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:5]] for line in out.splitlines()
              if line.startswith("│") and not re.match(r"│\s+\d+\. ", line)}
    assert topics["numerics"] == ["1", "0", "0"] and topics["distributed"] == ["0", "1", "3"]
    total = len(catalog.catalog())
    assert f"1 solved, 1 attempted, {total - 2} untouched of {total}" in out
    assert (workspace_state / "state.json").is_file() and not (KIT / "exercises" / ".dlkata").exists()
    assert "已解决" in invoke("--lang", "zh", "progress", str(root)).output


def test_reset_asks_keeps_a_backup_and_restores_the_stub(tmp_path, workspace_state):
    root = submission_with(tmp_path, {"softmax": REFERENCE})
    target = root / "softmax" / "softmax.py"
    declined = invoke("reset", "softmax", str(root), input="n\n")
    assert "Replace" in declined.output and "Nothing changed" in declined.output
    assert target.read_text() == REFERENCE.read_text()
    done = invoke("reset", "softmax", str(root), "--yes")
    assert "is the stub again" in done.output
    assert target.read_text() == STUB.read_text()
    backups = list((workspace_state / "backups").glob("softmax-*.py"))
    assert len(backups) == 1 and backups[0].read_text() == REFERENCE.read_text()
    assert "already the original stub" in invoke("reset", "softmax", str(root), "--yes").output
    target.write_text("# mine\n")
    assert "is the stub again" in invoke("reset", "softmax", str(root), input="y\n").output
    assert len(list((workspace_state / "backups").glob("softmax-*.py"))) == 2


def test_original_stub_from_history_when_the_kit_copy_was_edited(tmp_path, monkeypatch):
    edited = tmp_path / "softmax.py"
    edited.write_text(REFERENCE.read_text())
    exercise = catalog.Exercise(**{**SOFTMAX.__dict__, "folder": tmp_path})
    monkeypatch.setattr(stubs, "_git_versions", lambda path: iter([REFERENCE.read_text(), STUB.read_text()]))
    assert stubs.original_stub(exercise) == STUB.read_text()
    assert stubs.is_stub(STUB.read_text()) and not stubs.is_stub(REFERENCE.read_text())
    assert all(stubs.is_stub(e.stub.read_text()) for e in catalog.catalog())  # every kit stub is recognised


# -- explain ---------------------------------------------------------------------------------------

def test_explain_is_locked_until_the_hidden_tests_pass(tmp_path):
    root = submission_with(tmp_path, {"softmax": STUB})
    locked = CliRunner().invoke(main, ["explain", "softmax", str(root)])
    assert locked.exit_code == 2 and "unlock once it passes its hidden tests" in locked.output
    explain_md = (KIT / "solutions" / "softmax" / "EXPLAIN.md").read_text()
    first_words = explain_md.split("\n")[0].lstrip("# ").strip()
    forced = invoke("explain", "softmax", str(root), "--force").output
    assert first_words in forced and "unified diff" in forced
    assert '-    raise NotImplementedError("softmax")' in forced  # the stub's line, gone in the reference
    state = State()
    state.record(GradeResult(str(root), [ExerciseResult("softmax", "", 10, 10)]))
    panels = invoke("explain", "softmax", str(root), "--side-by-side").output
    assert "reference solution" in panels and "your solution" in panels
    assert "参考答案" in invoke("--lang", "zh", "explain", "softmax", str(root), "--side-by-side").output


# -- figures ---------------------------------------------------------------------------------------

def test_pipeline_simulation_and_attention_memory():
    ref = figures.gpipe_schedule(4, 8)
    assert figures.valid_schedule(ref, 4, 8)
    assert not figures.valid_schedule(ref[:3], 4, 8) and not figures.valid_schedule([ops[1:] for ops in ref], 4, 8)
    timeline = figures.simulate(ref, 1.0, 1.0)
    makespan = max(end for *_, end in timeline)
    assert makespan == 2 * (8 + 4 - 1)  # m + p - 1 slots of forward plus backward
    busy = sum(end - start for *_, start, end in timeline)
    assert 1 - busy / (4 * makespan) == pytest.approx(3 / 11)
    assert figures.simulate([[("B", 0), ("F", 0)], [("B", 0), ("F", 0)]]) is None  # deadlock
    assert figures.attention_memory(4096, 1024) == (4096 ** 2 * 4, 4096 * 1024 * 4)
    assert figures.attention_memory(512, 1024) == (512 ** 2 * 4,) * 2


# -- mock interview and the HTML report ------------------------------------------------------------

def test_mock_draw_is_seeded_and_the_countdown_stops():
    draw = [e.id for e in mock.pick(3, seed=7)]
    assert draw == [e.id for e in mock.pick(3, seed=7)] and len(set(draw)) == 3
    assert [e.id for e in mock.pick(5, ("numerics",), seed=1)] == ["softmax"]
    now = [0.0]
    assert mock.countdown(2, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s)) == "time_up"

    def ctrl_c(s):
        raise KeyboardInterrupt

    assert mock.countdown(60, clock=lambda: now[0], sleep=ctrl_c) == "stopped"
    assert mock.countdown(0) == "time_up"


def test_mock_interview_grades_at_once_and_writes_the_report(tmp_path, workspace_state):
    """`dlkata mock --minutes 0` on softmax (the reference), with a correct Adam/RMSprop and a deadlocking
    schedule beside it for the report's plots; then the grade unlocks `explain`. (One test: its grading
    in the sandbox is the slow part, and xdist's loadgroup does not group tests under pytest 9.)"""
    root = submission_with(tmp_path, {"softmax": REFERENCE, "megatron": WRONG_MEGATRON,
                                      "adaptive_optim": KIT / "solutions" / "adaptive_optim" / "adaptive_optim.py"})
    html = tmp_path / "mock.html"
    out = invoke("mock", str(root), "--minutes", "0", "--topic", "numerics", "--count", "2", "--seed", "3",
                 "--html", str(html))
    assert "Mock interview: 1 exercises" in out.output and "softmax" in out.output
    assert "10/10" in out.output and "HTML report written to" in out.output
    state = json.loads((workspace_state / "state.json").read_text())
    assert list(state["exercises"]) == ["softmax"] and state["exercises"]["softmax"]["best_percent"] == 100.0

    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "http://" not in page.replace("http://www.w3.org", "")
    for key in ("scores", "optimisers", "attention", "pipeline"):
        assert f'data-plot="{key}"' in page
    assert page.count("<td>test_") >= 8  # every hidden test of softmax, with its outcome
    assert "your Adam follows torch&#x27;s path" in page and "your RMSprop follows torch&#x27;s path" in page
    assert "your one_f_one_b_schedule deadlocks" in page  # so the GPipe order is drawn instead
    assert page.count('class="op op-F"') == 32 and page.count('class="op op-B"') == 32

    assert "identical to the reference" in invoke("explain", "softmax", str(root)).output


def from_json_report(tmp_path: Path) -> Path:
    result = GradeResult(str(tmp_path / "gone"), [ExerciseResult("softmax", SOFTMAX.title, 5, 10, [
        Outcome("test_values", "failed", 0, 1, "softmax(x, dim=1) <differs>"),
        Outcome("test_shape", "passed", 1, 1)])])
    source = tmp_path / "result.json"
    source.write_text(result.to_json())
    html = tmp_path / "out" / "report.html"
    assert "HTML report written" in invoke("report", "--html", str(html), "--from-json", str(source)).output
    return html


def test_report_from_json_without_the_code_plots_torch_only(tmp_path):
    page = from_json_report(tmp_path).read_text()
    assert "softmax(x, dim=1) &lt;differs&gt;" in page and "no adaptive_optim submission" in page
    assert "the GPipe order" in page and "50%" in page


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="needs chromium (apt-get install -y chromium); never skipped in CI")
def test_report_renders_in_headless_chromium(tmp_path):
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,2600"]
    url = from_json_report(tmp_path).resolve().as_uri()
    dom = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert 'data-plots="4"' in dom, dom[-2000:]  # the page's script ran after layout
    rendered = dict(re.findall(r'data-plot="(\w+)"[^>]*data-rendered="([^"]+)"', dom)) or \
        {k: v for v, k in re.findall(r'data-rendered="([^"]+)"[^>]*data-plot="(\w+)"', dom)}
    assert set(rendered) == {"scores", "optimisers", "attention", "pipeline"}, rendered
    fewest = {"scores": 2, "optimisers": 1000, "attention": 10, "pipeline": 64}  # marks each must draw at least
    for key, value in rendered.items():
        width, height, marks = map(int, re.match(r"(\d+)x(\d+):(\d+)", value).groups())
        assert width > 200 and height > 80 and marks >= fewest[key], (key, value)
    shot = tmp_path / "report.png"
    subprocess.run([*args, f"--screenshot={shot}", url], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 20_000
