"""``dlkata report --html``: one self-contained HTML page (inline CSS and SVG, no external resource):
the total, a score bar per topic, each exercise's tests with their messages, and the plots of
``grader.learner.figures``. A short inline script records each plot's rendered size on its
``<figure>`` (``data-rendered``), a self-check a headless browser can read."""

from __future__ import annotations

import time
from html import escape
from pathlib import Path

from grader.learner import figures
from grader.results import GradeResult

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1000px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
figure{margin:1.2rem 0;padding:.8rem;border:1px solid #ddd;border-radius:6px;background:#fff}
figcaption{color:#444;max-width:760px} .note{color:#8a4b00;margin:.2rem 0}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem} td,th{border-bottom:1px solid #eee;padding:.25rem .4rem;text-align:left;vertical-align:top}
.passed{color:#1a7f37}.failed,.error,.forbidden{color:#cf222e}.timeout{color:#9a6700}.crashed{color:#8250df}.not_implemented{color:#777}
pre{white-space:pre-wrap;margin:0;font-size:12px;background:#f6f8fa;padding:.3rem .5rem;border-radius:4px}
details{margin:.5rem 0} summary{cursor:pointer;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:1rem} .grid figure{flex:1 1 440px}
"""

SELF_CHECK = """
document.addEventListener('DOMContentLoaded', function () {
  var figs = document.querySelectorAll('figure[data-plot]');
  figs.forEach(function (f) {
    var svg = f.querySelector('svg'), box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    var marks = svg ? svg.querySelectorAll('polyline,rect,circle').length : 0;
    f.setAttribute('data-rendered', Math.round(box.width) + 'x' + Math.round(box.height) + ':' + marks);
  });
  document.body.setAttribute('data-plots', String(figs.length));
});
"""


def _figure(fig: figures.Figure) -> str:
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in fig.notes)
    return (f'<figure data-plot="{fig.key}" id="plot-{fig.key}"><h3>{escape(fig.title)}</h3>{fig.svg}'
            f"<figcaption>{escape(fig.caption)}</figcaption>{notes}</figure>")


def _exercise_section(e) -> str:
    passed = sum(t.outcome == "passed" for t in e.tests)
    head = (f'<summary>{escape(e.id)}: {e.score:g}/{e.max_score:g} ({passed}/{len(e.tests)} tests passed)'
            f' <span class="sub">{escape(e.title)}</span></summary>')
    message = f"<p><pre>{escape(e.message)}</pre></p>" if e.message else ""
    rows = "".join(f'<tr><td>{escape(t.name)}</td><td class="{escape(t.outcome)}">{escape(t.outcome)}</td>'
                   f"<td>{t.points:g}/{t.max_points:g}</td>"
                   f"<td>{f'<pre>{escape(t.message)}</pre>' if t.message and t.outcome != 'passed' else ''}</td></tr>"
                   for t in e.tests)
    table = (f"<table><tr><th>test</th><th>outcome</th><th>points</th><th>message</th></tr>{rows}</table>"
             if e.tests else "")
    is_open = " open" if e.score < e.max_score and e.outcome == "graded" else ""
    return f'<details class="exercise" id="ex-{escape(e.id)}"{is_open}>{head}{message}{table}</details>'


def render(result: GradeResult, submission_root: Path | None = None, title: str = "dlkata report") -> str:
    """The page; ``submission_root`` is where the learner's code for the plots is (None: torch's only)."""
    plots = [figures.optimiser_figure(submission_root), figures.attention_figure(),
             figures.pipeline_figure(submission_root)]
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="sub">{escape(result.submission)} &middot; {result.score:g}/{result.max_score:g} points '
            f"({result.percent:.1f}%) &middot; {escape(time.strftime('%Y-%m-%d %H:%M'))}"
            + (f" &middot; {escape(result.isolation)}" if result.isolation else "") + "</p>",
            _figure(figures.score_bars(result)),
            "<h2>What your code does</h2>", '<div class="grid">', *map(_figure, plots), "</div>",
            "<h2>Tests</h2>", *map(_exercise_section, result.exercises)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>" + "\n".join(body)
            + f"<script>{SELF_CHECK}</script></body></html>\n")


def write(path: Path, result: GradeResult, submission_root: Path | None = None, title: str = "dlkata report") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(result, submission_root, title), encoding="utf-8")
    return path
