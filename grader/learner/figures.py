"""The report's plots, each a ``Figure`` (inline SVG and a caption that says what it teaches):
score per topic; the learner's Adam and RMSprop against torch's on the Rosenbrock function; memory of
full vs chunked attention over sequence length (analytic); the 1F1B pipeline schedule as a timeline.
The learner's code runs only in the sandbox, through the probes of ``grader.learner.probes``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from grader import catalog
from grader.errors import ProbeFailure
from grader.learner import probes
from grader.learner.svg import PALETTE, Plot, human_bytes
from grader.results import GradeResult
from grader.sandbox import Sandbox


@dataclass
class Figure:
    key: str
    title: str
    svg: str
    caption: str
    notes: list[str] = field(default_factory=list)


def _exercise(exercise_id: str):
    try:
        return catalog.get(exercise_id)
    except Exception:  # a kit without this exercise
        return None


def _learner_module(root: Path | None, exercise_id: str) -> Path | None:
    if root is None:
        return None
    module = Path(root) / exercise_id / f"{exercise_id}.py"
    return module if module.is_file() else None


def _first_line(failure: ProbeFailure) -> str:
    return (str(failure.message).strip().splitlines() or [failure.outcome])[0]


# -- scores per topic ------------------------------------------------------------------------------

def topic_scores(result: GradeResult) -> dict[str, tuple[float, float]]:
    topics = {e.id: e.topic for e in catalog.catalog()}
    scores: dict[str, tuple[float, float]] = {}
    for e in result.exercises:
        topic = topics.get(e.id, "other")
        got, out_of = scores.get(topic, (0.0, 0.0))
        scores[topic] = (got + e.score, out_of + e.max_score)
    return scores


def score_bars(result: GradeResult) -> Figure:
    scores = topic_scores(result)
    n = max(len(scores), 1)
    plot = Plot(680, 56 + 28 * n, (0, 100), (n, 0), margin=(10, 130, 46, 110), css_class="plot score-bars",
                title="score per topic")
    for i, (topic, (got, out_of)) in enumerate(scores.items()):
        pct = 100 * got / out_of if out_of else 0.0
        plot.rect(0, i + 0.15, 100, i + 0.85, "#eee", label=topic)
        plot.rect(0, i + 0.15, max(pct, 0.4), i + 0.85, "#2ca02c" if pct >= 100 else "#1f77b4",
                  css="bar", label=f"{topic}: {got:g}/{out_of:g}")
        plot.text(plot.left - 8, plot.y(i + 0.5) + 4, topic, pixel=True, anchor="end", size=12)
        plot.text(plot.x(100) + 8, plot.y(i + 0.5) + 4, f"{pct:.0f}%  ({got:g}/{out_of:g})", pixel=True,
                  anchor="start", size=11)
    plot.axes("percent of the topic's points", "", [0, 25, 50, 75, 100], [], xfmt=lambda v: f"{v:g}%")
    return Figure("scores", "Score per topic", plot.render(), "Hidden-test points earned per topic.")


# -- optimisers ------------------------------------------------------------------------------------

OPTIMISERS = (("Adam", 0.1), ("RMSprop", 0.05))
START, STEPS = (-1.5, 2.0), 500
XLIM, YLIM = (-2.0, 2.0), (-1.0, 3.0)


def learner_paths(module: Path, steps: int = STEPS) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The learner's trajectories, run in the sandbox; failures come back as notes."""
    exercise = _exercise("adaptive_optim")
    sandbox = Sandbox(module, "adaptive_optim", timeout_s=max(exercise.timeout_s if exercise else 10.0, 30.0),
                      forbidden=exercise.forbidden if exercise else (),
                      forbidden_aten=exercise.forbidden_aten if exercise else (),
                      probe_files=(probes.__file__,))
    paths, notes = {}, []
    try:
        for name, lr in OPTIMISERS:
            try:
                paths[name] = sandbox.run(probes.optimiser_path, name, START, lr, steps)
            except ProbeFailure as failure:
                notes.append(f"your {name}: {_first_line(failure)}")
    finally:
        sandbox.close()
    return paths, notes


def _deviation(yours: torch.Tensor, ref: torch.Tensor) -> str:
    if not isinstance(yours, torch.Tensor) or yours.shape != ref.shape:
        return f"returned {type(yours).__name__} of an unexpected shape"
    gap = (yours.double() - ref).abs().amax(dim=1)
    if not torch.isfinite(yours).all():
        step = int((~torch.isfinite(yours).all(dim=1)).nonzero()[0])
        return f"diverges (non-finite at step {step})"
    bad = (gap > 1e-6 * (1 + ref.abs().amax(dim=1))).nonzero()
    if len(bad) == 0:
        worst = float(gap.max())
        return "follows torch's path exactly" if worst == 0 else f"follows torch's path to within {worst:.1e}"
    return f"leaves torch's path at step {int(bad[0])} (ends {float(gap[-1]):.3g} away)"


def optimiser_figure(root: Path | None) -> Figure:
    reference = {name: probes.optimiser_path(torch.optim, name, START, lr, STEPS) for name, lr in OPTIMISERS}
    module = _learner_module(root, "adaptive_optim")
    yours, notes = learner_paths(module) if module else ({}, ["no adaptive_optim submission: torch's paths only"])
    plot = Plot(560, 470, XLIM, YLIM, margin=(16, 16, 44, 54), css_class="plot optimisers",
                title="Adam and RMSprop on the Rosenbrock function")
    nx, ny = 48, 40
    dx, dy = (XLIM[1] - XLIM[0]) / nx, (YLIM[1] - YLIM[0]) / ny
    for i in range(nx):
        for j in range(ny):
            x, y = XLIM[0] + (i + 0.5) * dx, YLIM[0] + (j + 0.5) * dy
            level = min(math.log10(1 + float(probes.rosenbrock((x, y)))) / 3.5, 1.0)
            shade = int(250 - 120 * level)
            plot.rect(XLIM[0] + i * dx, YLIM[0] + j * dy, XLIM[0] + (i + 1) * dx, YLIM[0] + (j + 1) * dy,
                      f"rgb({shade},{shade},{min(255, shade + 18)})", clip=True)
    legend = []
    for (name, _), color in zip(OPTIMISERS, PALETTE):
        plot.line(reference[name].tolist(), color, width=7, opacity=0.3, label=f"torch.optim.{name}", clip=True)
        legend.append((f"torch.optim.{name} (wide)", color, ""))
        if name in yours:
            plot.line(yours[name].tolist() if isinstance(yours[name], torch.Tensor) else [], color, width=1.8,
                      dash="5 3", label=f"your {name}", clip=True)
            legend.append((f"your {name} (dashed)", color, "5 3"))
            notes.append(f"your {name} {_deviation(yours[name], reference[name])}")
    plot.dot(*START, "#000", label="start (-1.5, 2)")
    plot.dot(1.0, 1.0, "#e6ab02", r=5, label="minimum (1, 1)")
    plot.axes("x", "y", [-2, -1, 0, 1, 2], [-1, 0, 1, 2, 3])
    plot.legend(legend)
    losses = ", ".join(f"torch {name} ends at f = {float(probes.rosenbrock(reference[name][-1])):.3g}"
                       for name, _ in OPTIMISERS)
    caption = (f"{STEPS} steps from (-1.5, 2) on f(x, y) = (1 - x)² + 100 (y - x²)², minimum at (1, 1). "
               "Both divide each coordinate's step by a running RMS of its gradient, so they cross the steep "
               "walls and the flat floor of the valley at similar speeds; Adam's momentum carries it along "
               f"the floor. {losses}.")
    return Figure("optimisers", "Your optimisers vs torch's", plot.render(), caption, notes)


# -- attention memory ------------------------------------------------------------------------------

def attention_memory(seq_len: int, chunk: int, bytes_per_element: int = 4) -> tuple[int, int]:
    """Bytes of attention scores for one head: full L x L, chunked L x chunk (the chunk capped at L)."""
    return seq_len * seq_len * bytes_per_element, seq_len * min(chunk, seq_len) * bytes_per_element


def attention_figure(chunk: int = 1024) -> Figure:
    lengths = [2 ** k for k in range(9, 18)]
    full = [(L, attention_memory(L, chunk)[0]) for L in lengths]
    chunked = [(L, attention_memory(L, chunk)[1]) for L in lengths]
    plot = Plot(560, 360, (lengths[0], lengths[-1]), (2 ** 20, 2 ** 36), xlog=True, ylog=True,
                margin=(16, 20, 44, 78), css_class="plot attention", title="attention score memory")
    plot.line(full, PALETTE[1], width=2.5, label="full attention: L² scores")
    plot.line(chunked, PALETTE[0], width=2.5, label=f"chunked (online softmax), chunk {chunk}: L·chunk")
    for L, b in full + chunked:
        plot.dot(L, b, "#333", r=2.2, label=f"L = {L}: {human_bytes(b)}")
    plot.axes("sequence length L (log)", "bytes, one head, fp32 (log)", [512, 2048, 8192, 32768, 131072],
              [2 ** k for k in range(20, 37, 4)], xfmt=lambda v: f"{int(v) // 1024}k" if v >= 1024 else str(int(v)),
              yfmt=human_bytes)
    plot.legend([("full: L² · 4 bytes", PALETTE[1], ""), (f"chunked: L · {chunk} · 4 bytes", PALETTE[0], "")])
    f, c = attention_memory(lengths[-1], chunk)
    caption = (f"The score matrix grows with L²; processing keys in chunks of {chunk} with a running max and sum "
               f"(online softmax) keeps only L × {chunk} scores at a time, linear in L. At L = 128k: "
               f"{human_bytes(f)} vs {human_bytes(c)} per head, before multiplying by heads and batch.")
    return Figure("attention", "Memory: full vs chunked attention", plot.render(), caption)


# -- 1F1B pipeline ---------------------------------------------------------------------------------

Schedule = list[list[tuple[str, int]]]


def gpipe_schedule(num_stages: int, num_microbatches: int) -> Schedule:
    """GPipe's order, drawn until the learner's own 1F1B schedule works (the kit never shows 1F1B itself:
    writing it is the megatron exercise): every stage runs all forwards, then all backwards."""
    return [[("F", mb) for mb in range(num_microbatches)] + [("B", mb) for mb in range(num_microbatches)]
            for _ in range(num_stages)]


def valid_schedule(schedule, num_stages: int, num_microbatches: int) -> bool:
    if not isinstance(schedule, list) or len(schedule) != num_stages:
        return False
    wanted = sorted([("B", mb) for mb in range(num_microbatches)] + [("F", mb) for mb in range(num_microbatches)])
    return all(isinstance(ops, list) and sorted(tuple(op) for op in ops) == wanted for ops in schedule)


def simulate(schedule: Schedule, forward: float = 1.0, backward: float = 2.0):
    """Start and end time of every op when each stage runs its ops in order as soon as its input is
    there (F of stage s after F of s - 1; B of s after B of s + 1, the last stage's B after its F).
    Returns ``[(stage, op, mb, start, end)]``, or None when the order deadlocks."""
    p = len(schedule)
    done: dict[tuple[str, int, int], float] = {}
    position, free = [0] * p, [0.0] * p
    timeline = []
    progressed = True
    while progressed:
        progressed = False
        for s in range(p):
            while position[s] < len(schedule[s]):
                op, mb = schedule[s][position[s]]
                if op == "F":
                    dep = ("F", s - 1, mb) if s > 0 else None
                else:
                    dep = ("B", s + 1, mb) if s < p - 1 else ("F", s, mb)
                if dep is not None and dep not in done:
                    break
                start = max(free[s], done.get(dep, 0.0) if dep else 0.0)
                end = start + (forward if op == "F" else backward)
                done[(op, s, mb)] = free[s] = end
                timeline.append((s, op, mb, start, end))
                position[s] += 1
                progressed = True
    return timeline if all(position[s] == len(schedule[s]) for s in range(p)) else None


def learner_schedule(module: Path, num_stages: int, num_microbatches: int) -> tuple[Schedule | None, str]:
    exercise = _exercise("megatron")
    sandbox = Sandbox(module, "megatron", timeout_s=max(exercise.timeout_s if exercise else 10.0, 10.0),
                      forbidden=exercise.forbidden if exercise else (),
                      forbidden_aten=exercise.forbidden_aten if exercise else (),
                      probe_files=(probes.__file__,))
    try:
        return sandbox.run(probes.one_f_one_b, num_stages, num_microbatches), ""
    except ProbeFailure as failure:
        return None, _first_line(failure)
    finally:
        sandbox.close()


def pipeline_figure(root: Path | None, num_stages: int = 4, num_microbatches: int = 8) -> Figure:
    gpipe = gpipe_schedule(num_stages, num_microbatches)
    schedule, source, notes = gpipe, "the GPipe order (all forwards, then all backwards)", []
    module = _learner_module(root, "megatron")
    if module:
        yours, why = learner_schedule(module, num_stages, num_microbatches)
        if yours is None:
            notes.append(f"your one_f_one_b_schedule: {why}; showing the GPipe order")
        elif not valid_schedule(yours, num_stages, num_microbatches):
            notes.append("your one_f_one_b_schedule does not run every F and B exactly once per stage; "
                         "showing the GPipe order")
        elif simulate(yours) is None:
            notes.append("your one_f_one_b_schedule deadlocks (a stage waits for something that never comes); "
                         "showing the GPipe order")
        else:
            schedule, source = yours, "your one_f_one_b_schedule"
            notes.append("your schedule runs every op once per stage without deadlock")
    timeline = simulate(schedule)
    makespan = max(end for *_, end in timeline)
    plot = Plot(760, 70 + 42 * num_stages, (0, makespan), (num_stages, 0), margin=(14, 16, 44, 70),
                css_class="plot pipeline", title="pipeline schedule")
    for s, op, mb, start, end in timeline:
        color = "#6baed6" if op == "F" else "#74c476"
        plot.rect(start, s + 0.12, end, s + 0.88, color, stroke="#fff", css=f"op op-{op}",
                  label=f"stage {s}: {op}{mb}, t = {start:g}..{end:g}")
        plot.text((start + end) / 2, s + 0.5, f"{op}{mb}", size=10, dy=4)
    for s in range(num_stages):
        plot.text(plot.left - 8, plot.y(s + 0.5) + 4, f"stage {s}", pixel=True, anchor="end", size=11)
    plot.axes("time (forward = 1 unit, backward = 2)", "", range(0, int(makespan) + 1, 4), [])
    busy = sum(end - start for *_, start, end in timeline)
    idle = 1 - busy / (num_stages * makespan)
    p, m = num_stages, num_microbatches
    caption = (f"{source}, p = {p} stages, m = {m} micro-batches. GPipe keeps all m activations of a stage "
               f"alive until its backwards; 1F1B holds at most p - s (warm-up forwards, then one forward per "
               f"backward) with the same bubble. Idle share here "
               f"{idle:.0%}; with equal forward and backward times the bubble is (p - 1) / (m + p - 1) = "
               f"{(p - 1) / (m + p - 1):.0%}.")
    return Figure("pipeline", "Pipeline schedule (1F1B once yours works)", plot.render(), caption, notes)
