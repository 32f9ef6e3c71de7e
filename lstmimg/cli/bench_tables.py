"""`lstmimg bench`'s tables: each fits an 80-column terminal without cutting a header, marks which way
is better for every figure (higher ↑, lower ↓), and shows how much the timed runs varied, so a busy
machine shows in the report instead of passing for a slow program."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

UP, DOWN = "↑", "↓"


def _table(title: str, columns: Sequence[str], wrap: Sequence[str] = ()) -> Table:
    """A compact table that fits 80 columns: headers are split into short lines ("\\n") and figures never
    wrap, so nothing is cut; only the first column (names) and those in ``wrap`` fold when space runs out."""
    t = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False)
    for i, col in enumerate(columns):
        folds = i == 0 or col in wrap
        t.add_column(col, justify="left" if i == 0 or col in wrap else "right", no_wrap=not folds, overflow="fold")
    return t


def _spread(value: float | None) -> str:
    return "-" if value is None else f"±{value:.0%}"


def render_bench(out: Console, report) -> None:
    """The bench report as tables, with the machine's load and a warning for noisy figures."""
    from lstmimg.bench import NOISY

    m = report.machine
    say = lambda text: out.print(text, highlight=False, soft_wrap=True)  # noqa: E731
    load = f"  load {m['load_before']} on {m['cpus']} CPUs at start" if m.get("load_before") is not None else ""
    say(f"[bold]lstmimg bench[/]  {m['device']}  {m.get('gpu', m['processor'])}  {m['threads']} threads  torch {m['torch']}  python {m['python']}{load}  ({report.seconds:.0f} s)")
    say(f"[dim]{UP} higher is better, {DOWN} lower is better; figures are medians of the timed runs, spread is ± half their range around it[/]")
    if m.get("load_before") is not None and m.get("cpus") and m["load_before"] > 0.5 * m["cpus"]:
        say(f"[yellow]the machine was busy when the bench began (load {m['load_before']} on {m['cpus']} CPUs): expect slow, noisy figures[/]")
    if report.models:
        t = _table("training (samples per second)", ("model", "params", "MFLOP\n/sample", f"lstmimg\n/s {UP}", f"plain\n/s {UP}", f"x plain\n{UP}", "spread"))
        for b in report.models:
            t.add_row(b.model, f"{b.params:,}", f"{b.flops_per_sample / 1e6:.1f}", f"{b.train_samples_per_s:.0f}", f"{b.plain_train_samples_per_s:.0f}", f"{b.train_ratio:.2f}", _spread(b.train_spread))
        out.print(t)
        t = _table(f"inference, batch of {report.models[0].batch} (samples per second)", ("model", f"lstmimg\n/s {UP}", f"plain\n/s {UP}", f"x plain\n{UP}", f"GFLOP/s\n{UP}", "spread"))
        for b in report.models:
            t.add_row(b.model, f"{b.infer_batch_samples_per_s:.0f}", f"{b.plain_infer_batch_samples_per_s:.0f}", f"{b.infer_ratio:.2f}", f"{b.achieved_gflops:.1f}", _spread(b.infer_spread))
        out.print(t)
        t = _table("latency, batch of one", ("model", f"samples\n/s {UP}", f"p50\nms {DOWN}", f"p95\nms {DOWN}", "spread"))
        for b in report.models:
            t.add_row(b.model, f"{b.infer_batch1_samples_per_s:.0f}", f"{b.latency_p50_ms:.2f}", f"{b.latency_p95_ms:.2f}", _spread(b.latency_spread))
        out.print(t)
        say("[dim]plain: a textbook PyTorch loop on the same model and data; x plain = plain time / lstmimg time[/]")
        say(f"[dim]FLOPs: {report.flops_method}[/]")
    if report.backends:
        t = _table("inference backends (large batch)", ("model", "backend", f"samples\n/s {UP}", f"x eager\n{UP}", f"max\n|diff| {DOWN}", "note"), wrap=("backend", "note"))
        for b in report.backends:
            if b.status == "ok":
                t.add_row(b.model, b.backend, f"{b.samples_per_s:.0f}", f"{b.speedup:.2f}", f"{b.max_abs_diff:.1e}", escape(b.note))
            else:
                t.add_row(b.model, b.backend, "-", "-", "-", escape(b.status))
        out.print(t)
    if report.scaling:
        t = _table("scaling (region_lstm: steps = rows = sequence length; batch at 28 steps)", ("model", "varied", "value", f"train step\nms {DOWN}", f"inference\nms {DOWN}"))
        for r in report.scaling:
            t.add_row(r.model, r.axis, str(r.value), f"{r.train_ms:.2f}", f"{r.infer_ms:.2f}")
        out.print(t)
    if report.video:
        v = report.video
        t = _table(f"video ({Path(v.clip).name}, {v.frames} frames)", (f"decode\nfps {UP}", f"decode + resize\nfps {UP}", f"lstmimg video\nfps {UP}", f"x decode\ntime {DOWN}", "spread"))
        t.add_row(f"{v.decode_fps:.0f}", f"{v.decode_resize_fps:.0f}", f"{v.end_to_end_fps:.0f}", f"{v.ratio:.2f}", _spread(max(v.decode.spread, v.end_to_end.spread)))
        out.print(t)
        say(f"motion flow: {v.flow_ms_per_frame:.3f} ms/frame at the model's size against {v.decode_ms_per_frame:.3f} ms to decode a frame; "
            f"lstmimg video with --motion flow {v.flow_end_to_end_fps:.0f} fps, {v.flow_ratio:.2f}x decode-only")
        if v.onnx_end_to_end_fps:
            say(f"lstmimg video with the model exported to ONNX: {v.onnx_end_to_end_fps:.0f} fps, {v.onnx_ratio:.2f}x decode-only")
    if report.features:
        f = report.features
        t = _table(f"frozen backbone features ({f.frames_per_step} frames a step; extract: frames/s, once; a training step on cached features, and in full with the backbone run)", ("backbone", f"extract\n/s {UP}", f"cached\nstep ms {DOWN}", f"full\nstep ms {DOWN}", f"cached /\nfull {DOWN}", "spread"))
        t.add_row(f"{f.backbone} {f.size}px", f"{f.extract_frames_per_s:.0f}", f"{f.step_cached_ms:.2f}", f"{f.step_uncached_ms:.2f}", f"{f.ratio:.3f}",
                  _spread(max(f.extract.spread, f.cached.spread, f.uncached.spread)))
        out.print(t)
    if report.formats:
        t = _table("export formats (bundled digits model; ms: batch of one; vs .pt: this format / PyTorch)", ("format", f"MB {DOWN}", f"val\naccuracy {UP}", f"batch-1\nms {DOWN}", f"images\n/s {UP}", f"ms vs\n.pt {DOWN}", f"/s vs\n.pt {UP}", "spread"))
        for r in report.formats:
            if r.status == "ok":
                acc = f"{r.val_accuracy:.4f}" if r.val_accuracy is not None else "-"
                t.add_row(r.format, f"{r.file_mb:.2f}", acc, f"{r.ms_batch1:.3f}", f"{r.images_per_s:.0f}", f"{r.latency_ratio:.2f}", f"{r.throughput_ratio:.2f}", _spread(r.spread))
        out.print(t)
        for r in report.formats:
            if r.status != "ok":
                say(f"{r.format}: {escape(r.status)}")
    if report.startup:
        s = report.startup
        t = _table("start-up (fresh processes, median)", ("command", f"seconds\n{DOWN}", f"x import\ntorch {DOWN}"))
        t.add_row('python -c "import torch"', f"{s.import_torch_s:.3f}", "1.00")
        t.add_row("lstmimg --help", f"{s.help_s:.3f}", f"{s.help_ratio:.2f}")
        t.add_row("lstmimg predict one.png", f"{s.predict_s:.3f}", f"{s.predict_ratio:.2f}")
        out.print(t)
    if report.noisy:
        say(f"[yellow]noisy: {'; '.join(report.noisy)} (runs varied by more than ±{NOISY:.0%} around the median); rerun when the machine is idle[/]")
