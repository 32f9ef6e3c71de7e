"""The commands that look into, ship and measure models and runs: explain, export, bench, backbones, models, runs, report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lstmimg.cli.base import app, check_min, err, out, run_guarded
from lstmimg.errors import LstmimgError


@app.command()
def explain(
    paths: Annotated[list[Path], typer.Argument(help="Image or video files (the model's kind decides).")],
    model: Annotated[Path | None, typer.Option(help="Run folder or checkpoint. Default: the newest run of the first file's kind, else the bundled model.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write a picture per input to this folder (NAME.explain.png).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON array, an object per input.")] = False,
    target: Annotated[str | None, typer.Option(help="Explain this class instead of the predicted one.")] = None,
    frame_baseline: Annotated[str, typer.Option(help="Videos: an occluded frame becomes the clip's mean frame (mean) or the frame before (hold).")] = "mean",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps.")] = "auto",
):
    """Which regions or frames decided, and how the decision formed as the model read the sequence."""

    def work():
        from lstmimg.engine.review.explanations import explain as explain_inputs
        from lstmimg.engine.review.explanations import public
        from lstmimg.files import json_text

        results = explain_inputs(paths, model, target, out_dir, device, frame_baseline)
        if json_out:
            sys.stdout.write(json_text([public(r) for r in results]))
            return
        for r in results:
            line = f"[bold]{r['path']}[/]  label {r['label']} {r['prob']:.2f}  explaining {r['target']}"
            if "frames" in r:
                top = sorted(r["frames"], key=lambda f: -f["importance"])[:3]
                line += "  frames that decided most: " + ", ".join(f"{f['index']} ({f['importance']:.2f})" for f in top)
            else:
                top = sorted(r["steps"], key=lambda s: -s["importance"])[:3]
                sure = next((a["steps"] for a in r["anytime"] if abs(a["prob"] - r["anytime"][-1]["prob"]) < 0.05), len(r["anytime"]))
                line += f"  steps that decided most: {', '.join(str(s['step']) for s in top)} of {len(r['steps'])}; within 0.05 of its final probability after {sure} steps"
            out.print(line, highlight=False, soft_wrap=True)
            if r.get("picture"):
                out.print(f"  picture: {r['picture']}", highlight=False, soft_wrap=True)

    run_guarded(work)


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="Run folder or checkpoint to export.")],
    format_: Annotated[str, typer.Option("--format", help="onnx (the only format: see docs/export.md).")] = "onnx",
    out_file: Annotated[Path | None, typer.Option("--out", help="Output file. Default: beside the checkpoint, e.g. best.onnx.")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset version (below 18, image models go through the legacy TorchScript exporter).")] = 18,
    verify: Annotated[bool, typer.Option(help="Run ONNX Runtime against PyTorch on real samples; fail above 1e-4.")] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
):
    """Export a model to ONNX, normalisation inside the graph; video models take and return the LSTM state."""

    def work():
        from lstmimg.engine.infer.export import TOLERANCE, export_model

        if format_ != "onnx":
            raise LstmimgError(f"--format {format_!r} is not one of: onnx")
        with err.status("exporting ..."):
            result = export_model(model, out_file, opset, verify, overwrite)
        check = f"; verified against PyTorch on samples from {result['samples_from']}: largest probability difference {result['max_abs_diff']:.1e} (<= {TOLERANCE:g})" if result["verified"] else " (not verified)"
        out.print(f"wrote {result['path']} ({result['bytes'] / 1e6:.1f} MB, {result['kind']} model, opset {result['opset']}) in {result['seconds']:.1f} s{check}", highlight=False, soft_wrap=True)

    run_guarded(work)


@app.command()
def bench(
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps (GPU timings synchronise).")] = "auto",
    json_file: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON to this file.")] = None,
    models_: Annotated[list[str] | None, typer.Option("--model", help="Only this model (repeatable). Default: every registered model.")] = None,
    video: Annotated[Path | None, typer.Option(help="Clip for the video section. Default: a bundled clip, upscaled to 1280x720 and looped to 300 frames.")] = None,
    repeats: Annotated[int, typer.Option(help="Timed runs per figure (the median is shown, with the spread).")] = 7,
    skip: Annotated[list[str] | None, typer.Option(help="Skip a section: models, backends, scaling, video, features, formats, startup (repeatable).")] = None,
    quick: Annotated[bool, typer.Option(help="Tiny sizes and 2 runs: checks that everything runs, in seconds.")] = False,
):
    """Measure every stage on this machine, side by side with plain PyTorch and OpenCV."""

    def work():
        check_min("--repeats", repeats, 1)
        known = ("models", "backends", "scaling", "video", "features", "formats", "startup")
        sections = tuple(s for s in known if s not in (skip or []))
        unknown = sorted(set(skip or []) - set(known))
        if unknown:
            raise LstmimgError(f"--skip {unknown[0]!r} is not one of: {', '.join(known)}")
        if json_file:
            from lstmimg.files import check_output_file

            check_output_file(json_file, "--json")
        from lstmimg.bench import report_to_dict, run_bench
        from lstmimg.cli.bench_tables import render_bench
        from lstmimg.models.registry import get_model_spec

        for name in models_ or []:
            get_model_spec(name)  # an unknown name fails here, before anything is measured
        import logging

        quiet = logging.getLogger("torch.utils.cpp_extension")  # torch.compile's probe warns "No CUDA runtime is found" on a CPU machine: not the user's business
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            with err.status("measuring ...") as status:
                report = run_bench(device, models_, repeats, video=str(video) if video else None, sections=sections, progress=lambda text: status.update(f"measuring {text} ..."), tiny=quick)
        finally:
            quiet.setLevel(level)
        render_bench(out, report)
        if json_file:
            from lstmimg.files import write_json

            write_json(json_file, report_to_dict(report))

    run_guarded(work)


@app.command()
def backbones():
    """List the torchvision backbones --backbone accepts, with their default weights' figures."""

    def work():
        from lstmimg.models.backbones import cache_dir, list_backbones

        table = Table("backbone", "weights", "params", "GFLOPs", "ImageNet top-1", "cached", box=None, header_style="bold")
        for b in list_backbones():
            table.add_row(b.name, b.weights, f"{b.params / 1e6:.1f}M", f"{b.gflops:.2f}", f"{b.top1:.1f}", "yes" if b.cached else "-")
        out.print(table)
        err.print(f"cache: {cache_dir()} (TORCH_HOME); use with: lstmimg train DATA --backbone NAME --pretrained", highlight=False, soft_wrap=True)

    run_guarded(work)


@app.command()
def models():
    """List the registered models."""

    def work():
        from lstmimg.models.registry import list_models

        table = Table("model", "input", "description", box=None, header_style="bold")
        for spec in list_models():
            table.add_row(spec.name, spec.kind, spec.description)
        out.print(table)

    run_guarded(work)


@app.command()
def runs(
    folders: Annotated[list[Path] | None, typer.Argument(help="A folder of runs (default: runs/train), or two run folders to compare.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
):
    """List the runs under a folder (status, accuracy, epochs, time), or compare two runs' settings and figures."""

    def work():
        import json

        from lstmimg.history import compare_runs, list_runs
        from lstmimg.runs import RUNS_DIR, run_named

        given = [run_named(f, RUNS_DIR) for f in folders or []]
        if len(given) > 2:
            raise LstmimgError(f"lstmimg runs takes a folder of runs or two runs to compare, not {len(given)} paths")
        if len(given) == 2:
            report = compare_runs(*given)
            if json_out:
                out.print_json(json.dumps(report))
                return
            table = Table("", Path(report["runs"][0]).name, Path(report["runs"][1]).name, box=None, header_style="bold")
            for key, (a, b) in report["figures"].items():
                table.add_row(key, _shown(a), _shown(b))
            table.add_section()
            for key, (a, b) in report["settings"].items():
                table.add_row(key, _shown(a), _shown(b))
            out.print(table)
            if not report["settings"]:
                err.print("same settings", highlight=False)
            return
        base = given[0] if given else RUNS_DIR
        records = list_runs(base) if given or base.is_dir() else []
        if json_out:
            out.print_json(json.dumps([r.row() for r in records]))
            return
        if not records:
            err.print(f"{base}: no runs yet (lstmimg train writes them there)", highlight=False, soft_wrap=True)
            return
        table = Table(box=None, header_style="bold", padding=(0, 1), pad_edge=False)
        widest = lambda values: max(len(v) for v in values)  # noqa: E731  (columns keep their width; model and data give way)
        table.add_column("run", no_wrap=True, min_width=min(24, widest([r.name for r in records])))
        table.add_column("status", no_wrap=True, min_width=widest([r.status for r in records]))
        for name, width in (("val acc (best)", 11), ("epochs", 6), ("time", 5)):
            table.add_column(name, no_wrap=True, justify="right", min_width=width)
        table.add_column("model", no_wrap=True, min_width=widest([r.model or "-" for r in records]))  # a cut name (cnn_ls…) names no model
        table.add_column("data", overflow="ellipsis", no_wrap=True)  # the one column that gives way
        table.add_column("started", no_wrap=True, min_width=widest([r.date or "-" for r in records]))
        for r in records:
            epochs = f"{r.epochs}/{r.planned_epochs}" if r.planned_epochs else str(r.epochs)
            acc = f"{r.val_accuracy:.4f} ({r.best_epoch})" if r.val_accuracy is not None else "-"
            time_s = f"{r.train_seconds:.0f}s" if r.train_seconds is not None else "-"
            status = "[red]broken[/]" if r.status == "broken" else r.status
            table.add_row(escape(r.name), status, acc, epochs, time_s, r.model, escape(Path(r.data).name), r.date)
        out.print(table)
        for r in records:
            if r.status == "broken":
                err.print(f"broken run {r.path}: {escape(r.problem)}", highlight=False, soft_wrap=True)

    run_guarded(work)


@app.command()
def report(
    source: Annotated[Path, typer.Argument(help="A run folder (or the name `lstmimg runs` prints), or the --jsonl results file of `lstmimg predict`.")],
    out: Annotated[Path | None, typer.Option(help="Folder of the page (default: RUN/report, or beside the results file: NAME.report).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a report already in that folder.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps (a run's report scores its val files again).")] = "auto",
):
    """(Re)build the review page, DIR/index.html, that opens from disk: of a run (its best checkpoint on its val files) or of predict's results (no model needed)."""

    def work():
        from lstmimg.engine.review.evaluation import run_report
        from lstmimg.engine.review.report import results_report
        from lstmimg.runs import RUNS_DIR, run_named

        path = run_named(source, RUNS_DIR)
        if path.is_dir():
            if out is not None:
                raise LstmimgError("a run's report goes in RUN/report; --out is for a results file")
            written = run_report(path, overwrite, device)
        elif path.is_file():
            written = results_report(path, out or path.with_name(path.name + ".report"), overwrite)
        else:
            raise LstmimgError(f"{source}: no such run folder or results file")
        err.print(f"report: {written['index']} ({written['samples']} samples, {written['bytes'] / 1e6:.1f} MB)", markup=False, highlight=False)

    run_guarded(work)


def _shown(value) -> str:
    return "-" if value is None else escape(str(value))
