"""Rich rendering for the CLI: the training progress display and the end-of-run summary."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


def phrases(parts: list[str], width: int) -> str:
    """``parts`` (rich markup) joined by two spaces into lines of at most ``width`` cells, broken only
    between parts, never inside one ("4000 train / 1000 val images" stays whole); later lines indented."""
    from rich.text import Text

    lines, line, used = [], "", 0
    for part in parts:
        cells = Text.from_markup(part).cell_len
        if line and used + 2 + cells > width:
            lines.append(line)
            line, used = "  " + part, 2 + cells
        else:
            line, used = (f"{line}  {part}", used + 2 + cells) if line else (part, cells)
    return "\n".join([*lines, line])


class TrainDisplay:
    """Turns ``fit`` callback events into a progress bar per epoch and one line per finished epoch."""

    def __init__(self, out: Console, err: Console):
        self.out, self.err = out, err
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,  # no bar in logs and pipes; the per-epoch lines remain
        )
        self.task = None
        self.description = ""
        self.epochs = 0
        self.unit = "img/s"

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def callback(self, event: str, info: dict) -> None:
        if event == "load":
            self._task(f"decode {info['split']}", info["total"], "")
            self.bar.update(self.task, completed=info["done"])
        elif event == "features":  # a frozen backbone's features, computed once
            if self.description != f"backbone features {info['split']}":
                self._task(f"backbone features {info['split']}", info["total"], "")
            self.bar.update(self.task, completed=info["done"], stats=f"{info['per_s']:.0f}/s" if info.get("per_s") else "")
        elif event == "unfreeze":
            self.err.print(f"epoch {info['epoch']}: backbone unfrozen, fine-tuned at lr {info['backbone_lr']:g}", highlight=False)
        elif event == "start":
            self.epochs = info["epochs"]
            self.unit = "clips/s" if info["kind"] == "video" else "img/s"
            h, w = info["img_size"]
            self.err.print(phrases([f"run [bold]{escape(str(info['run_dir']))}[/]", f"device {info['device']}", f"{info['params']:,} parameters",
                                    f"{info['train_size']} train ({info['loading']}) / {info['val_size']} val {info['kind']}s", f"{len(info['classes'])} classes",
                                    f"{info['channels']}x{h}x{w}"], self.err.width), highlight=False, soft_wrap=True)
            for note in info.get("notes", []):
                self.err.print(note, highlight=False, soft_wrap=True)
            for warning in info.get("warnings", []):
                self.err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
            if info["skipped"]:
                n = len(info["skipped"])
                first = info["errors"][0] if info.get("errors") else info["skipped"][0]
                self.err.print(f"[yellow]warning:[/] skipped {n} unreadable file{'s' if n > 1 else ''}{', e.g.' if n > 1 else ':'} {first}", highlight=False, soft_wrap=True)
            if info.get("resumed_at"):
                epoch, step = info["resumed_at"]
                self.err.print(f"resuming at epoch {epoch}" + (f", step {step}" if step else ""), highlight=False)
        elif event == "step":
            if info["step"] == 1:
                self._task(f"epoch {info['epoch']}/{self.epochs}", info["steps"], "")
            stats = f"loss {info['loss']:.4f}  acc {info['acc']:.4f}  {info['samples_per_s']:.0f} {self.unit}"
            self.bar.update(self.task, completed=info["step"], stats=stats)
        elif event == "epoch":
            mark = "  [green]best[/]" if info["best"] else ""
            self.bar.console.print(phrases([f"epoch {info['epoch']:>3}/{self.epochs}", f"train loss {info['train_loss']:.4f} acc {info['train_acc']:.4f}",
                                            f"val loss {info['val_loss']:.4f} acc {info['val_acc']:.4f}", f"{info['samples_per_s']:.0f} {self.unit}",
                                            f"{info['seconds']:.1f}s{mark}"], self.bar.console.width), highlight=False, soft_wrap=True)
            if info.get("stop", "").startswith("plateau"):
                self.bar.console.print(f"[yellow]stopping[/]: {info['stop']} (--patience 0 trains them all)", highlight=False, soft_wrap=True)

    def _task(self, description: str, total: int, stats: str) -> None:
        self.description = description
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(description, total=total, stats=stats)

    def print_summary(self, summary: dict) -> None:
        table = Table(title="training summary", show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column()
        rows = [
            ("model", summary["model"]),
            ("val accuracy", f"{summary['val_accuracy']:.4f} (epoch {summary['best_epoch']})"),
            ("val macro-F1", f"{summary['val_macro_f1']:.4f}  balanced accuracy {summary['val_balanced_accuracy']:.4f}" if "val_macro_f1" in summary else None),
            ("val clip accuracy", f"{summary['val_clip_accuracy']:.4f}" if "val_clip_accuracy" in summary else None),
            ("test accuracy", f"{summary['test_accuracy']:.4f}" if "test_accuracy" in summary else None),
            ("epochs", f"{summary['epochs']} of {summary['planned_epochs']} planned" if "planned_epochs" in summary else str(summary["epochs"])),
            ("stopped", summary.get("stop_reason") or None),
            ("train time", f"{summary['train_seconds']:.1f} s"),
            ("best checkpoint", summary["best_checkpoint"]),
            ("run folder", summary["run_dir"]),
        ]
        for key, value in rows:
            if value is not None:
                table.add_row(key, value)
        self.out.print(table)


class CollectionDisplay:
    """``predict`` over many files: a progress bar with the rate and time left while it runs (on a
    terminal), then a summary: counts per label, files skipped and why, where the results are."""

    def __init__(self, err: Console, kind: str, enabled: bool):
        self.err, self.kind, self.enabled = err, kind, enabled
        self.bar = Progress(TextColumn("[bold]classify"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                            TextColumn("left"), TimeRemainingColumn(), console=err, transient=True, disable=not (enabled and err.is_terminal))
        self.task = None
        self.errors: list[tuple[str, str]] = []  # unreadable files, with the reason
        self.counts: dict[str, int] = {}
        self.done = 0
        self.started = 0.0

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def start(self, todo: int, already: int) -> None:
        import time

        self.started = time.perf_counter()
        self.task = self.bar.add_task("classify", total=todo, rate="")
        if already and self.enabled:
            self.err.print(f"resuming: {already} input{'s' if already > 1 else ''} already in the results, {todo} to go", highlight=False)

    def advance(self, batch) -> None:
        import time

        self.errors += batch.skipped
        for r in batch.results:
            self.counts[r["label"]] = self.counts.get(r["label"], 0) + 1
        self.done += len(batch.results) + len(batch.skipped)
        seconds = time.perf_counter() - self.started
        if self.task is not None:
            self.bar.update(self.task, completed=self.done, rate=f"{self.done / seconds:.0f} {self.kind}s/s" if seconds > 0 else "")

    def summary(self, summary: dict, other_kind: list[tuple[str, str]], files: list[tuple], hidden: bool) -> None:
        """The end of the run, on stderr (stdout may carry the results)."""
        import time

        p = self.err.print
        for path, why in other_kind if summary["rank"] == 0 else ():  # every process has the same list
            p(f"skipped {path}: {why}", highlight=False, soft_wrap=True)
        for _, message in self.errors:
            p(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        if not self.enabled:
            return
        seconds = time.perf_counter() - self.started
        n = summary["classified"]
        line = f"classified {n} {self.kind}{'s' if n != 1 else ''} in {seconds:.1f} s ({n / max(seconds, 1e-9):.1f}/s)"
        if summary["world"] > 1:
            line += f" in process 0 of {summary['world']}"
        if summary["already_done"]:
            line += f"; {summary['already_done']} already done"
        skipped = [f"{len(self.errors)} unreadable"] if self.errors else []
        skipped += [f"{len(other_kind)} not {self.kind}s"] if other_kind else []
        p(line + (f"; skipped {', '.join(skipped)}" if skipped else ""), highlight=False, soft_wrap=True)
        if files:
            from lstmimg.engine.infer.outputs import label_counts

            path, fmt = files[0]
            whole = summary["already_done"] or summary["world"] > 1  # the file holds more than this process classified
            counts = label_counts(path, fmt) if whole else dict(sorted(self.counts.items(), key=lambda kv: -kv[1]))
            p(f"{path}: {sum(counts.values())} results; " + ", ".join(f"{label} {c}" for label, c in counts.items()), highlight=False, soft_wrap=True)
        else:
            p("labels: " + ", ".join(f"{label} {c}" for label, c in sorted(self.counts.items(), key=lambda kv: -kv[1])), highlight=False, soft_wrap=True)
        if hidden:
            p("the results were not printed (more than fit on the screen): write them with --jsonl FILE or --csv FILE", highlight=False, soft_wrap=True)


class render_video:
    @staticmethod
    @contextmanager
    def progress(err: Console, enabled: bool):
        """A progress bar with frames/s for files; yields the ``on_progress(done, total)`` callback."""
        if not enabled:
            yield None
            return
        bar = Progress(TextColumn("[bold]video"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal)
        with bar:
            task = bar.add_task("video", total=None, rate="")
            started = [None]

            def update(done: int, total: int) -> None:
                import time

                now = time.perf_counter()
                started[0] = started[0] or now
                rate = f"{done / (now - started[0]):.0f} frames/s" if now > started[0] else ""
                bar.update(task, completed=done, total=total or None, rate=rate)

            yield update

    @staticmethod
    def summary(out: Console, result: dict) -> None:
        from lstmimg.engine.infer.timeline import format_time

        out.print(f"[bold]{result['path']}[/]  {result['frames']} frames  label [bold]{result['label']}[/] {result['prob']:.2f}", highlight=False, soft_wrap=True)
        top = Table("label", "prob", box=None, header_style="bold", title="top labels")
        for t in result["top"]:
            top.add_row(t["label"], f"{t['prob']:.3f}")
        out.print(top)
        timeline = Table("time", "label", "prob", box=None, header_style="bold", title="timeline")
        for seg in result["segments"]:
            timeline.add_row(f"{format_time(seg['start'])}–{format_time(seg['end'])}", seg["label"], f"{seg['prob']:.2f}")
        out.print(timeline)
