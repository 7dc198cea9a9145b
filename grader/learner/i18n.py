"""The learner-facing language: English or Chinese. ``lang()`` resolves ``--lang`` > ``DLKATA_LANG`` >
the locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``: the first one set decides; ``zh*`` means Chinese) >
English. ``t(key, **fields)`` formats one message; statements and hints fall back to English when an
exercise has no Chinese version."""

from __future__ import annotations

import os
from pathlib import Path

import click

LANGS = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    "hint": {"en": "Hint {level}/{total} for {id}: {text}",
             "zh": "{id} 的提示 {level}/{total}：{text}"},
    "hints_done": {"en": "All {total} hints for {id} have been shown.",
                   "zh": "{id} 的 {total} 条提示已全部显示。"},
    "no_hints": {"en": "{id} has no hints.", "zh": "{id} 没有提示。"},
    "no_zh_statement": {"en": "", "zh": "（{id} 还没有中文题面，下面是英文版。）"},
    "hint_level": {"en": "Hints shown: {level}/{total} (`dlkata hint {id}` shows the next)",
                   "zh": "已看提示：{level}/{total}（`dlkata hint {id}` 显示下一条）"},
    "last_hint": {"en": "Latest hint: {text}", "zh": "最近一条提示：{text}"},
    # watch
    "watch_start": {"en": "Watching {file} (Ctrl-C to stop).",
                    "zh": "正在监视 {file}（Ctrl-C 退出）。"},
    "watch_run": {"en": "[{time}] {id}: running the public tests...",
                  "zh": "[{time}] {id}：正在运行公开测试……"},
    "watch_pass": {"en": "All {total} public tests of {id} pass. Next: `dlkata grade --exercise {id}` "
                         "for the hidden tests.",
                   "zh": "{id} 的 {total} 个公开测试全部通过。"
                         "下一步：`dlkata grade --exercise {id}` 运行隐藏测试。"},
    "watch_fail": {"en": "{passed}/{total} public tests pass. First failure: {test} ({outcome})",
                   "zh": "公开测试通过 {passed}/{total}。第一个失败：{test}（{outcome}）"},
    "watch_broken": {"en": "{id} cannot be tested yet:", "zh": "{id} 暂时无法测试："},
    "watch_next": {"en": "Moving on to the next unsolved exercise: {id} ({title})",
                   "zh": "进入下一道未完成的题：{id}（{title}）"},
    "watch_all_done": {"en": "Every exercise passes its public tests. Well done!",
                       "zh": "所有题目的公开测试都已通过，干得好！"},
    "watch_waiting": {"en": "Waiting for you to save {file}...", "zh": "等待你保存 {file}……"},
    "watch_stopped": {"en": "Stopped watching.", "zh": "已停止监视。"},
    "watch_missing": {"en": "{file} does not exist: nothing to watch for {id}.",
                      "zh": "{file} 不存在：{id} 没有可监视的文件。"},
    # progress
    "progress_title": {"en": "dlkata progress", "zh": "dlkata 学习进度"},
    "col_topic": {"en": "topic", "zh": "主题"},
    "col_exercise": {"en": "exercise", "zh": "题目"},
    "col_status": {"en": "status", "zh": "状态"},
    "col_best": {"en": "best hidden score", "zh": "隐藏测试最高分"},
    "col_hints": {"en": "hints", "zh": "提示"},
    "solved": {"en": "solved", "zh": "已解决"},
    "attempted": {"en": "attempted", "zh": "进行中"},
    "untouched": {"en": "untouched", "zh": "未开始"},
    "progress_total": {"en": "{solved} solved, {attempted} attempted, {untouched} untouched of {total}",
                       "zh": "共 {total} 题：已解决 {solved}，进行中 {attempted}，未开始 {untouched}"},
    # reset
    "reset_confirm": {"en": "Replace {file} with the original stub? Your version is kept in {backup}",
                      "zh": "用原始模板替换 {file}？你的版本会备份到 {backup}"},
    "reset_done": {"en": "{file} is the stub again; your version is in {backup}",
                   "zh": "{file} 已恢复为模板；你的版本保存在 {backup}"},
    "reset_same": {"en": "{file} is already the original stub: nothing to reset.",
                   "zh": "{file} 已经是原始模板，无需重置。"},
    "reset_created": {"en": "{file} did not exist; the stub is there now.",
                      "zh": "{file} 原本不存在，现已写入模板。"},
    "aborted": {"en": "Nothing changed.", "zh": "未做任何修改。"},
    # explain
    "explain_locked": {"en": "The explanation and the reference solution of {id} unlock once it passes its hidden tests "
                             "(best so far: {best:.0f}%). Run `dlkata grade --exercise {id}`, or use --force.",
                       "zh": "{id} 的讲解和参考答案在隐藏测试全部通过后解锁（目前最高：{best:.0f}%）。"
                             "先运行 `dlkata grade --exercise {id}`，或加 --force。"},
    "explain_no_solutions": {"en": "this copy of dlkata has no reference solutions for {id} (a student release?)",
                             "zh": "这份 dlkata 没有 {id} 的参考答案（可能是学生版）"},
    "explain_missing": {"en": "No explanation has been written for {id} yet.", "zh": "{id} 还没有讲解。"},
    "explain_reference": {"en": "reference solution", "zh": "参考答案"},
    "explain_yours": {"en": "your solution", "zh": "你的答案"},
    "explain_diff": {"en": "Your solution -> the reference (unified diff):",
                     "zh": "你的答案 -> 参考答案（unified diff）："},
    "explain_no_yours": {"en": "({file} does not exist: showing the reference only)",
                         "zh": "（{file} 不存在：只显示参考答案）"},
    "explain_identical": {"en": "Your solution is identical to the reference.", "zh": "你的答案与参考答案完全相同。"},
    # report and mock
    "report_written": {"en": "HTML report written to {file}", "zh": "HTML 报告已写入 {file}"},
    "mock_picked": {"en": "Mock interview: {count} exercises, {minutes:g} minutes. Edit them under {path}:",
                    "zh": "模拟面试：{count} 道题，{minutes:g} 分钟。在 {path} 下作答："},
    "mock_left": {"en": "time left", "zh": "剩余时间"},
    "mock_time_up": {"en": "Time is up: grading.", "zh": "时间到：开始评分。"},
    "mock_stopped": {"en": "Stopped early: grading.", "zh": "提前结束：开始评分。"},
    "mock_none": {"en": "no exercise matches these topics: {topics}", "zh": "没有符合这些主题的题目：{topics}"},
}


_override: str | None = None


def set_lang(value: str | None) -> None:
    """The ``--lang`` option's value for this invocation (None: fall back to the environment)."""
    global _override
    _override = value


def _normalise(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().lower()
    return "zh" if value.startswith("zh") else "en" if value.startswith(("en", "c", "posix")) else None


def lang() -> str:
    """``--lang`` > ``DLKATA_LANG`` > the locale > ``"en"``."""
    if _override:
        return _override
    chosen = _normalise(os.environ.get("DLKATA_LANG"))
    if chosen:
        return chosen
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def t(key: str, **fields) -> str:
    entry = MESSAGES[key]
    return (entry.get(lang()) or entry["en"]).format(**fields)


def statement(exercise) -> tuple[Path, bool]:
    """The statement file in the current language, and whether it fell back to English."""
    if lang() == "zh":
        zh = exercise.folder / "README.zh.md"
        if zh.is_file():
            return zh, False
        return exercise.statement, True
    return exercise.statement, False


def hints(exercise) -> tuple[str, ...]:
    """The exercise's hints in the current language (English when it has no Chinese hints)."""
    return exercise.hints_zh if lang() == "zh" and exercise.hints_zh else exercise.hints


def explanation(folder: Path) -> Path:
    """``EXPLAIN.md`` of a solution folder, or ``EXPLAIN.zh.md`` in Chinese when it exists."""
    zh = folder / "EXPLAIN.zh.md"
    return zh if lang() == "zh" and zh.is_file() else folder / "EXPLAIN.md"


def _set_from_command(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        set_lang(value)


def _set_from_group(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    set_lang(value)  # every invocation starts from the environment unless --lang is given


def lang_option(group: bool = False) -> click.Option:
    """``--lang en|zh`` as a parameter object, appended to a group's or a command's ``params``."""
    return click.Option(["--lang"], type=click.Choice(LANGS), expose_value=False, is_eager=True,
                        callback=_set_from_group if group else _set_from_command,
                        help="Language of statements, hints and messages (default: DLKATA_LANG, else the locale).")
