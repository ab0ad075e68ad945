"""Explaining a stored weight calculation in text (``sn19 scores show``).

Without a miner: the run's header, the task weights, and every miner's final weight with its
per-task shares. With a miner: first in words, per task, what limits it most and what would
raise its weight (``scoring.read.advice``); then for each task the inputs (checks, quality, speed
metric, the period history entry by entry, capacity) → each factor (speed bonus, period
history, E) → the share, the cubed share and the task's contribution → the final weight and
its u16 value.
"""

from __future__ import annotations

from collections import defaultdict

from scoring import formulas
from scoring.read.advice import PeriodFacts, TaskAdvice, advice_text, advise_task, peers_of
from scoring.weights.formula import FactorRow
from scoring.weights.runs import RunReport


def _num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def _short(hotkey: str) -> str:
    return hotkey if len(hotkey) <= 14 else f"{hotkey[:6]}…{hotkey[-6:]}"


def header(run: RunReport) -> list[str]:
    when = run.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        f"Weight run {run.id} at {when}: {run.status}"
        + (f" ({run.message})" if run.message else ""),
        f"  block {run.block if run.block is not None else '-'}, period {run.period_id or '-'}, "
        f"version_key {run.version_key if run.version_key is not None else '-'}",
        "  task weights: "
        + ", ".join(f"{task} {weight:.3f}" for task, weight in sorted(run.task_weights.items())),
    ]
    window = run.parameters.get("quality_window_s")
    if window is not None:
        lines.append(
            f"  quality window {float(window) / 3600:.1f} h; history: up to "
            f"{run.parameters.get('history_periods')} periods, decay {formulas.HISTORY_DECAY}, "
            f"×{formulas.NEW_MINER_FACTOR} until more than {formulas.NEW_MINER_PERIODS} scored"
        )
    return lines


def summary(run: RunReport) -> str:
    shares: dict[str, dict[str, float]] = defaultdict(dict)
    for _, row in run.factors:
        shares[row.hotkey][row.task] = row.cubed_share
    tasks = sorted(run.task_weights)
    lines = header(run)
    lines.append("")
    columns = "".join(f"  {task[:18]:>18}" for task in tasks)
    lines.append(f"  {'uid':>5}  {'hotkey':<14}  {'weight':>8}  {'u16':>5}{columns}")
    for weight in run.weights:
        per_task = "".join(f"  {_num(shares[weight.hotkey].get(task)):>18}" for task in tasks)
        lines.append(
            f"  {weight.uid if weight.uid is not None else '-':>5}  {_short(weight.hotkey):<14}  "
            f"{weight.weight:>8.4f}  {weight.weight_u16:>5}{per_task}"
        )
    if not run.weights:
        lines.append("  (no miner could be weighted)")
    lines.append("")
    lines.append("  per-task columns are the cubed shares s'; `--miner HOTKEY` explains one miner")
    return "\n".join(lines)


def _task_block(row: FactorRow) -> list[str]:
    lines = [f"  task {row.task} (weight {row.task_weight:.3f})"]
    lines.append(
        f"    checks {row.check_count}: quality mean(q^{formulas.QUALITY_EXPONENT}) = "
        f"{_num(row.quality)}"
    )
    lines.append(
        f"    speed: p{formulas.SPEED_PERCENTILE:.0f} work/s = {_num(row.speed_metric, 2)}"
        f" → bonus {row.speed_bonus:+.4f}"
    )
    if row.history:
        lines.append("    period history (newest first: period, score, consumed, quota, weight):")
        scored = [entry for entry in row.history if entry.score is not None]
        for age, entry in enumerate(scored[:12]):
            weight = max(entry.consumed, entry.quota, 0.0) * formulas.HISTORY_DECAY**age
            lines.append(
                f"      {entry.period_id:>6}  {_num(entry.score)}  {entry.consumed:>10.1f}  "
                f"{entry.quota:>10.1f}  {weight:>10.2f}"
            )
        unscored = len(row.history) - len(scored)
        if len(scored) > 12:
            lines.append(f"      … {len(scored) - 12} older scored periods")
        if unscored:
            lines.append(f"      ({unscored} periods without a score: no requests or capacity)")
    factor = "" if row.periods_scored > formulas.NEW_MINER_PERIODS else " (×0.25: new miner)"
    lines.append(
        f"    period history P = {row.period_history:.4f} over {row.periods_scored} "
        f"scored periods{factor}"
    )
    lines.append(f"    capacity {row.capacity:.1f}")
    lines.append(
        f"    E = q × (1 + bonus) × P × capacity = {_num(row.quality)} × "
        f"{1 + row.speed_bonus:.4f} × {row.period_history:.4f} × {row.capacity:.1f} = "
        f"{row.effective:.4f}"
    )
    lines.append(
        f"    share s = E/ΣE = {row.share:.4f}; s' = s³/Σs³ = {row.cubed_share:.4f}; "
        f"contribution W × s' = {row.contribution:.4f}"
    )
    return lines


def miner_advice(
    run: RunReport, hotkey: str, facts: dict[str, dict[int, PeriodFacts]]
) -> list[TaskAdvice]:
    """The words for one miner of a stored run (``scoring.read.advice``); ``facts``: its closed
    periods per task (``scoring.read.explain_data.period_facts``)."""
    window = float(run.parameters.get("quality_window_s") or 0.0)
    advice = []
    for _, row in run.factors:
        if row.hotkey != hotkey:
            continue
        largest, speeds = peers_of([r for _, r in run.factors if r.task == row.task])
        advice.append(
            advise_task(
                row,
                facts.get(row.task, {}),
                largest_capacity=largest,
                speeds=speeds,
                quality_window_s=window,
            )
        )
    return advice


def explain_miner(run: RunReport, hotkey: str, advice: list[TaskAdvice] | None = None) -> str:
    rows = [(uid, row) for uid, row in run.factors if row.hotkey == hotkey]
    lines = header(run)
    lines.append("")
    if not rows:
        lines.append(f"  {hotkey} has no factors in this run (not a contender, no checks)")
        return "\n".join(lines)
    uid = next((uid for uid, _ in rows if uid is not None), None)
    lines.append(f"  miner {hotkey} (uid {uid if uid is not None else '- (not registered)'})")
    if advice:
        lines.append("")
        lines.append("  In words: what limits this miner most, and what would raise its weight")
        lines.extend(advice_text(advice))
        lines.append("")
        lines.append("  The numbers:")
    for _, row in rows:
        lines.extend(_task_block(row))
    final = next((w for w in run.weights if w.hotkey == hotkey), None)
    total = sum(row.contribution for _, row in rows)
    if final is None:
        lines.append("  final weight: none (not registered, so it cannot be weighted)")
    else:
        lines.append(
            f"  Σ contributions {total:.4f} → normalised over all miners: weight "
            f"{final.weight:.6f} → u16 {final.weight_u16} (the largest weight is 65535)"
        )
    return "\n".join(lines)
