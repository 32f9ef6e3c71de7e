"""`lstmimg video`: one or several files, webcams or streams, followed window by window."""

from __future__ import annotations

import csv
import re
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from lstmimg.cli.base import BACKEND_HELP, app, check_min, err, open_model, out, run_guarded
from lstmimg.errors import LstmimgError
from lstmimg.files import check_distinct_outputs, check_output_file

STATUS_EVERY = 5.0  # seconds between status lines


def read_sources(given: list[str] | None, sources_file: Path | None) -> list[str]:
    """The sources named on the command line, then those of ``--sources FILE`` (one a line, ``#`` comments)."""
    found = list(given or [])
    if sources_file is not None:
        try:
            text = sources_file.read_text(encoding="utf-8")
        except OSError as e:
            raise LstmimgError(f"{sources_file}: cannot read --sources ({e.strerror})") from None
        found += [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]
    if not found:
        raise LstmimgError("give a video file, webcam index or stream URL (or --sources FILE, one a line)")
    twice = sorted({s for s in found if found.count(s) > 1})
    if twice:
        raise LstmimgError(f"{twice[0]}: given twice")
    return found


def per_source(path: Path | None, sources: list[str]) -> list[Path | None]:
    """One output file per source: ``path`` itself for one source, else ``STEM-N-NAME.SUFFIX`` (N counts
    from 1, so two sources never share a name)."""
    if path is None:
        return [None] * len(sources)
    if len(sources) == 1:
        return [path]
    slug = lambda s: re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(s).stem if "://" not in s else s.split("://", 1)[1])[:40].strip("_.") or "source"  # noqa: E731
    return [path.with_name(f"{path.stem}-{i}-{slug(s)}{path.suffix}") for i, s in enumerate(sources, 1)]


@app.command()
def video(
    sources: Annotated[list[str] | None, typer.Argument(help="Video files, webcam indices (0) or stream URLs (rtsp://, http://); several are followed at once.", show_default=False)] = None,
    sources_file: Annotated[Path | None, typer.Option("--sources", help="A file with one source a line (# starts a comment).")] = None,
    model: Annotated[Path | None, typer.Option(help="Run folder, checkpoint or .onnx file. Default: newest video run in ./runs/train, else the bundled clips model.")] = None,
    window: Annotated[str | None, typer.Option(help="Window per timeline row: frames (16) or seconds (2s). Default: the model's clip length.")] = None,
    fps: Annotated[float | None, typer.Option(help="Sample frames at about this rate.")] = None,
    stride: Annotated[int | None, typer.Option(help="Sample every n-th frame (default: the model's training stride).")] = None,
    topk: Annotated[int, typer.Option(help="How many top labels to show for the whole video.")] = 5,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout (an array of them for several sources).")] = False,
    jsonl: Annotated[str | None, typer.Option("--jsonl", help="Write one event a line as it happens (windows; sources opened, lost, reopened, ended) to this file, or - for stdout.")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write the per-window rows to this CSV file (with a source column for several sources).")] = None,
    save: Annotated[Path | None, typer.Option(help="Write the video with the current label drawn on each frame (.mp4, .avi); several sources: one file each, NAME-N-SOURCE.mp4.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Draw each class's probability over the video, segments shaded, to this PNG (one per source).")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds: of the video for a file (the same frames on any machine), of wall-clock time for a live source (which runs until Ctrl-C otherwise).")] = None,
    carry: Annotated[bool, typer.Option(help="Carry the LSTM state from window to window (--no-carry: score each window alone).")] = True,
    reset_every: Annotated[float | None, typer.Option(help="Start each source's LSTM state anew every this many seconds (for models trained on short clips).")] = None,
    drop: Annotated[bool | None, typer.Option("--drop/--no-drop", help="When the model cannot keep up, drop the oldest frames (counted) instead of queueing them. Default: drop for live sources, queue for files.", show_default=False)] = None,
    reconnect: Annotated[bool, typer.Option(help="Reopen a live source that drops (with a growing pause), its state begun anew.")] = True,
    status: Annotated[bool | None, typer.Option("--status/--no-status", help="A status line per source on stderr every few seconds (fps in, windows/s, dropped, latency). Default: for live sources, when stderr is a terminal.", show_default=False)] = None,
    report: Annotated[Path | None, typer.Option(help="Write the review page to this folder (DIR/index.html: open it from disk): each source's timeline, keyframes at the label changes and segments.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing --jsonl, --csv, --save, --plot or --report outputs (else they are refused).")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps, cuda:N.")] = "auto",
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
):
    """Classify videos or live streams, one or several at once: top labels and a timeline of labelled segments."""

    def work():
        from lstmimg.config import check_device

        check_min("--topk", topk, 1)
        if stride is not None:
            check_min("--stride", stride, 1)
        for option, value in (("--fps", fps), ("--max-seconds", max_seconds), ("--reset-every", reset_every)):
            if value is not None and value <= 0:
                raise LstmimgError(f"{option} must be > 0, got {value}")
        check_device(device)
        check_window(window)
        names = read_sources(sources, sources_file)
        saves, plots = per_source(save, names), per_source(plot, names)
        outputs = (("--save", saves), ("--plot", plots), ("--csv", [csv_file]), ("--jsonl", [None if jsonl in (None, "-") else Path(jsonl)]))
        check_distinct_outputs([(option, path) for option, paths in outputs for path in paths], names)
        for option, paths in outputs:
            for path in paths:
                if path is not None:
                    check_output_file(path, option)
                    if path.exists() and not overwrite:
                        raise LstmimgError(f"{path}: already exists (--overwrite replaces it)")
        if json_out and jsonl == "-":
            raise LstmimgError("--json and --jsonl -: both write to stdout; choose one")
        if report is not None:
            from lstmimg.engine.review.report import check_report_folder

            check_report_folder(report, overwrite)
        import torch

        from lstmimg.cli.render import render_video
        from lstmimg.data.video_io import is_live
        from lstmimg.engine.infer.timeline import classify_sources
        from lstmimg.files import json_text

        ckpt, where = open_model(model, "video", "video", backend, device)
        live = any(is_live(s) for s in names)
        screen = err if jsonl == "-" else out  # with --jsonl -, standard output carries the JSON lines alone
        events = EventLog(jsonl, csv_file, names, ckpt.classes, all(is_live(s) for s in names), screen,
                          live and not json_out, status if status is not None else live and err.is_terminal)
        threads = torch.get_num_threads()
        if where == "cpu":  # the decoders need the other cores; one thread runs these small windows faster (measured)
            torch.set_num_threads(1)
        finished = False
        try:
            with render_video.progress(err, enabled=len(names) == 1 and not live) as on_progress:
                events.on_progress = on_progress
                results = classify_sources(names, ckpt, window, fps, stride, topk, device, saves, max_seconds, events.add, carry, drop, reset_every, reconnect)
            finished = True
        finally:
            torch.set_num_threads(threads)
            events.close(keep=finished)
        failed = [r for r in results if isinstance(r, LstmimgError)]
        good = [r for r in results if not isinstance(r, LstmimgError)]
        for message in failed:
            err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        for result, plot_path in zip(results, plots):
            if isinstance(result, LstmimgError):
                continue
            if result["truncated"]:
                err.print(f"[yellow]warning:[/] {result['path']}: truncated: read {result['frames']} of {result['expected_frames']} frames", highlight=False, soft_wrap=True)
            if plot_path:
                from lstmimg.engine.review.plots import plot_timeline

                plot_timeline(result, ckpt.classes, plot_path)
        if report is not None and good:
            from lstmimg.engine.review.report import ReportWriter, add_timeline

            page = ReportWriter(report, "video", ckpt.classes, f"lstmimg video: {len(names)} source{'s' if len(names) > 1 else ''}", labelled=False, overwrite=overwrite,
                                scored=f"Model: {ckpt.path}")
            for result in good:
                add_timeline(page, result, ckpt.config.img_size)
            for name, result in zip(names, results):
                if isinstance(result, LstmimgError):
                    page.skip(name, str(result))
            written = page.close()
            err.print(f"report: {written['index']} ({written['samples']} sources, {written['bytes'] / 1e6:.1f} MB)", markup=False, highlight=False)
        if json_out:
            keep = ("path", "label", "prob", "top", "frames", "dropped", "segments")
            objects = [{k: r[k] for k in keep} for r in good]
            sys.stdout.write(json_text(objects[0] if len(names) == 1 and objects else objects))
        else:
            for result in good:
                render_video.summary(screen, result)
        if failed:
            raise typer.Exit(1)

    run_guarded(work)


def check_window(window: str | None) -> None:
    """A malformed ``--window`` refused before anything is opened or written."""
    if window is None:
        return
    from lstmimg.engine.infer.streams import parse_window

    try:
        parse_window(window, 1, 25.0)
    except LstmimgError as e:
        if "frame rate" not in str(e):  # seconds need the source's rate: checked once it opens
            raise


class EventLog:
    """Where ``lstmimg video``'s events go as they happen: ``--jsonl`` lines and ``--csv`` rows (written
    and flushed as they come; for a run with a file among its sources, under a temporary name renamed
    into place when the run ends, so an interrupted run leaves no partial file), window lines for live
    sources, source events, and the periodic status line."""

    def __init__(self, jsonl: str | None, csv_path: Path | None, names: list[str], classes: list[str], all_live: bool, screen, print_windows: bool, status: bool):
        from lstmimg.files import StreamedFile

        self.jsonl = sys.stdout if jsonl == "-" else StreamedFile(Path(jsonl), "--jsonl", direct=all_live) if jsonl else None
        self.csv = StreamedFile(csv_path, "--csv", direct=all_live) if csv_path else None
        self.several, self.screen, self.print_windows, self.status = len(names) > 1, screen, print_windows, status
        if self.csv is not None:
            try:
                self.csv.write(self._row([*(["source"] if self.several else []), "start", "end", "frames", "label", "prob", *classes]))
            except LstmimgError:
                self.close(keep=False)
                raise
        self.on_progress = None
        self.total = 0  # frames a single file's header claims, for the progress bar
        self.stats = {n: {"frames": 0, "windows": 0, "dropped": 0, "latency": []} for n in names}  # since the last status line
        self.last_status = time.monotonic()

    @staticmethod
    def _row(values: list) -> str:
        import io

        buffer = io.StringIO()
        csv.writer(buffer).writerow(values)
        return buffer.getvalue()

    def add(self, e) -> None:
        import json

        from lstmimg.engine.infer.streams import WindowEvent
        from lstmimg.engine.infer.timeline import format_time

        window = isinstance(e, WindowEvent)
        row = self._row([*([e.source] if self.several else []), round(e.start, 3), round(e.end, 3), e.frames, e.label, e.prob, *(round(p, 4) for p in e.probs)]) if window else None
        with signals_held():  # a window goes to --jsonl and --csv both, or to neither: Ctrl-C or SIGTERM waits for the two writes
            if self.jsonl is not None:
                self.jsonl.write(json.dumps(e.public(), ensure_ascii=False) + "\n")
                if self.jsonl is sys.stdout:
                    sys.stdout.flush()
            if window and self.csv is not None:
                self.csv.write(row)
        prefix = f"{e.source}  " if self.several else ""
        if window:
            s = self.stats[e.source]
            s["frames"] += e.frames
            s["windows"] += 1
            s["dropped"] += e.dropped
            if self.status:  # latencies only for the status line, which empties them
                s["latency"].append(e.latency_ms)
            if self.print_windows:
                self.screen.print(f"{prefix}{format_time(e.start)}  {e.label}  {e.prob:.2f}", highlight=False, soft_wrap=True)
            if self.on_progress:
                self.on_progress(e.last_index + 1, self.total)
        elif e.event == "opened" and e.info is not None:
            self.total = e.info.frame_count
        if not isinstance(e, WindowEvent) and (e.event in ("lost", "reopened") or (e.event == "opened" and self.several)):
            err.print(f"{e.source}: {e.event}" + (f" ({e.detail})" if e.detail else ""), highlight=False, soft_wrap=True)
        now = time.monotonic()
        if self.status and now - self.last_status >= STATUS_EVERY:
            self.print_status(now - self.last_status)
            self.last_status = now

    def print_status(self, seconds: float) -> None:
        import numpy as np

        for name, s in self.stats.items():
            lat = np.percentile(s["latency"], [50, 95]) if s["latency"] else (0.0, 0.0)
            err.print(f"{name}: {s['frames'] / seconds:.1f} frames/s in  {s['windows'] / seconds:.2f} windows/s  dropped {s['dropped']}  latency p50 {lat[0]:.0f} ms  p95 {lat[1]:.0f} ms",
                      highlight=False, soft_wrap=True)
            s.update(frames=0, windows=0, latency=[])

    def close(self, keep: bool) -> None:
        """The files renamed into place (``keep``), or removed, leaving what was there before."""
        for f in (self.jsonl, self.csv):
            if f is not None and f is not sys.stdout:
                f.close(keep)


@contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM back (on the main thread) until the block ends; they are handled then."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)

