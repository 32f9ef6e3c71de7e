"""The commands that train and classify: train, predict, eval (video: ``cli.video``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lstmimg.cli.base import BACKEND_HELP, app, check_min, err, open_model, out, run_guarded, signal_exit_code
from lstmimg.config import DEFAULT_MODELS, ModelConfig, TrainConfig
from lstmimg.errors import Interrupted, LstmimgError

RESUME_KEEPS = {"resume", "devices"}  # the only options that go with --resume: the run has its own settings
M, T = ModelConfig, TrainConfig  # defaults live in lstmimg/config.py, once
MODEL_PANEL, TRAIN_PANEL, VIDEO_PANEL = "Model", "Training", "Video data"


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'28' -> (28, 28); '32x48' -> (32, 48) as (H, W)."""
    if text is None:
        return None
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise LstmimgError(f"--img-size {text!r}: give one size (28) or HxW (32x48) in pixels")
    return parts[0], parts[1]


def bundled_digits() -> Path:
    from lstmimg.sample import sample_data_dir

    return sample_data_dir() / "digits"


@app.command()
def train(
    ctx: typer.Context,
    data: Annotated[Path | None, typer.Argument(help="Class folders of images or videos: a root with train/ + val/ (test/ optional), or class folders only. Default: the bundled digits.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name (see `lstmimg models`). Default: cnn_lstm for images, lrcn for videos.", rich_help_panel=MODEL_PANEL)] = None,
    scan: Annotated[str, typer.Option(help="How the image becomes a sequence: rows, cols, patches, snake.", rich_help_panel=MODEL_PANEL)] = M.scan,
    patch: Annotated[int, typer.Option(help="Patch side for --scan patches/snake (region_lstm).", rich_help_panel=MODEL_PANEL)] = M.patch,
    embed: Annotated[int, typer.Option(help="Region embedding size (region_lstm).", rich_help_panel=MODEL_PANEL)] = M.embed,
    rnn: Annotated[str, typer.Option(help="Recurrent cell: lstm, gru, rnn.", rich_help_panel=MODEL_PANEL)] = M.rnn,
    hidden: Annotated[int, typer.Option(help="Hidden units per direction.", rich_help_panel=MODEL_PANEL)] = M.hidden,
    layers: Annotated[int, typer.Option(help="Stacked recurrent layers.", rich_help_panel=MODEL_PANEL)] = M.layers,
    bidirectional: Annotated[bool, typer.Option(help="Read the sequence both ways.", rich_help_panel=MODEL_PANEL)] = M.bidirectional,
    pool: Annotated[str, typer.Option(help="Sequence summary: last (final state) or mean (over steps).", rich_help_panel=MODEL_PANEL)] = M.pool,
    dropout: Annotated[float, typer.Option(help="Dropout before the classifier.", rich_help_panel=MODEL_PANEL)] = M.dropout,
    fuse_global: Annotated[bool, typer.Option(help="Join global image features to the LSTM summary.", rich_help_panel=MODEL_PANEL)] = M.fuse_global,
    backbone: Annotated[str | None, typer.Option(help="torchvision backbone for cnn_lstm, e.g. resnet18.", rich_help_panel=MODEL_PANEL)] = None,
    backbone_weights: Annotated[Path | None, typer.Option(help="Local state-dict file for --backbone (nothing is downloaded).", rich_help_panel=MODEL_PANEL)] = None,
    pretrained: Annotated[bool, typer.Option(help="Start --backbone from its torchvision weights (from torch's hub cache, downloaded once), inputs normalised as they expect.", rich_help_panel=MODEL_PANEL)] = M.pretrained,
    weights: Annotated[str | None, typer.Option(help="Which torchvision weights with --pretrained, e.g. IMAGENET1K_V1. Default: the backbone's DEFAULT.", rich_help_panel=MODEL_PANEL)] = None,
    freeze_backbone: Annotated[bool, typer.Option(help="The backbone gets no gradients and keeps its batch-norm statistics; only the LSTM and the head train.", rich_help_panel=MODEL_PANEL)] = M.freeze_backbone,
    feature_cache: Annotated[bool, typer.Option(help="With --freeze-backbone: compute the backbone's features once and reuse them every epoch (augmentation off); with --cache, also across runs.", rich_help_panel=TRAIN_PANEL)] = T.feature_cache,
    unfreeze_after: Annotated[int | None, typer.Option(help="With --freeze-backbone: after N epochs, fine-tune the whole model (the backbone at --backbone-lr-scale of --lr).", rich_help_panel=TRAIN_PANEL)] = T.unfreeze_after,
    backbone_lr_scale: Annotated[float, typer.Option(help="The backbone's learning rate once unfrozen, as a fraction of --lr.", rich_help_panel=TRAIN_PANEL)] = T.backbone_lr_scale,
    motion: Annotated[str, typer.Option(help="Videos: motion beside the RGB frames: none, diff (frame differences), flow (OpenCV DIS optical flow). Default: flow for videos (measured, docs/motion.md).", rich_help_panel=VIDEO_PANEL)] = M.motion,
    fusion: Annotated[str, typer.Option(help="Videos with --motion: early (extra channels of the frame CNN) or two-stream (a second small CNN for motion).", rich_help_panel=VIDEO_PANEL)] = M.fusion,
    img_size: Annotated[str | None, typer.Option(help="Resize images (video frames) to S or HxW. Default: the data's most common size, at most 128 px a side (videos: 112).", rich_help_panel=MODEL_PANEL)] = None,
    fit_mode: Annotated[str, typer.Option("--fit", help="Images of another aspect than --img-size: squash (stretched) or letterbox (aspect kept, grey bars).", rich_help_panel=MODEL_PANEL)] = M.fit,
    clip_len: Annotated[int, typer.Option(help="Videos: frames per training clip.", rich_help_panel=VIDEO_PANEL)] = T.clip_len,
    clips_per_video: Annotated[int | None, typer.Option(help="Videos: random clips drawn per video per epoch. Default: 1, more for small sets (at least 300 steps).", rich_help_panel=VIDEO_PANEL)] = T.clips_per_video,
    frame_stride: Annotated[int | None, typer.Option(help="Videos: take every n-th frame when cutting clips; 0: spread each clip's frames over the whole video (segment sampling). Default: 2, or 0 for videos well past a clip's span.", rich_help_panel=VIDEO_PANEL)] = T.frame_stride,
    val_clips: Annotated[int, typer.Option(help="Videos: uniformly spaced clips per val video (softmax averaged).", rich_help_panel=VIDEO_PANEL)] = T.val_clips,
    cache: Annotated[Path | None, typer.Option(help="Keep decoded video frames, and a frozen backbone's features, in this folder (keyed by file content and settings) for later epochs and runs.", rich_help_panel=VIDEO_PANEL)] = None,
    amp: Annotated[bool, typer.Option(help="Mixed precision on CUDA (bf16 where supported, else fp16 with a gradient scaler); no effect on CPU. Off by default: the models here train slower with it on an H200 (docs/performance.md).", rich_help_panel=TRAIN_PANEL)] = T.amp,
    compile_cnn: Annotated[bool, typer.Option("--compile", help="torch.compile the CNN part (first steps pay the compile; measured no gain on CPU).", rich_help_panel=TRAIN_PANEL)] = T.compile,
    exclude: Annotated[list[Path] | None, typer.Option(help="Leave out the files this list names (a CSV of `lstmimg check`, or one path a line); repeatable. Recorded in the run.", rich_help_panel=TRAIN_PANEL)] = None,
    report: Annotated[bool, typer.Option(help="Write the review page of the best checkpoint on val (RUN/report/index.html) at the end.", rich_help_panel=TRAIN_PANEL)] = T.report,
    tensorboard: Annotated[bool, typer.Option(help="Write TensorBoard event files in the run folder when the tensorboard package is installed (pip install 'lstmimg[tensorboard]'; tensorboard --logdir runs).", rich_help_panel=TRAIN_PANEL)] = T.tensorboard,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training set. Default: 15, more for small sets (at least 300 steps).", rich_help_panel=TRAIN_PANEL)] = T.epochs,
    batch_size: Annotated[int | None, typer.Option(help="Samples per step (with --devices N, shared by the processes). Default: an eighth of the set, 16 to 64.", rich_help_panel=TRAIN_PANEL)] = T.batch_size,
    lr: Annotated[float, typer.Option(help="Peak learning rate.", rich_help_panel=TRAIN_PANEL)] = T.lr,
    optimizer: Annotated[str, typer.Option(help="adam, adamw, sgd.", rich_help_panel=TRAIN_PANEL)] = T.optimizer,
    weight_decay: Annotated[float, typer.Option(help="Weight decay.", rich_help_panel=TRAIN_PANEL)] = T.weight_decay,
    schedule: Annotated[str, typer.Option(help="LR schedule: onecycle, cosine (after warm-up), plateau (constant, a tenth each time val accuracy stalls for half the patience), none.", rich_help_panel=TRAIN_PANEL)] = T.schedule,
    warmup: Annotated[float, typer.Option(help="Fraction of steps spent warming up the LR.", rich_help_panel=TRAIN_PANEL)] = T.warmup,
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing of the loss.", rich_help_panel=TRAIN_PANEL)] = T.label_smoothing,
    augment: Annotated[bool, typer.Option(help="Random affine: small rotation, shift, scale (never flips).", rich_help_panel=TRAIN_PANEL)] = T.augment,
    clip_grad: Annotated[float, typer.Option(help="Clip the gradient norm to this (0: off).", rich_help_panel=TRAIN_PANEL)] = T.clip_grad,
    patience: Annotated[int | None, typer.Option(help="Stop after N epochs without a better val accuracy (0: never). Default: a fifth of the planned epochs (at least 2), not before a third of them, and below 100% only once the learning rate is under 5% of its peak; with --epochs, off.", rich_help_panel=TRAIN_PANEL)] = T.patience,
    min_epochs: Annotated[int | None, typer.Option(help="Never stop before this epoch. Default: a third of the planned epochs under the default rule, else 0.", rich_help_panel=TRAIN_PANEL)] = T.min_epochs,
    cooldown: Annotated[int | None, typer.Option(help="After a plateau below 100% val accuracy at a learning rate above a tenth of its peak, anneal it to 0 over N epochs, then stop. Default: 0.", rich_help_panel=TRAIN_PANEL)] = T.cooldown,
    class_weights: Annotated[str | None, typer.Option(help="'auto': weight the loss by inverse class frequency.", rich_help_panel=TRAIN_PANEL)] = None,
    sampler: Annotated[str | None, typer.Option(help="'balanced': draw every class equally often each epoch (with replacement). Default: each sample once (measured best on imbalanced sets: docs/check.md).", rich_help_panel=TRAIN_PANEL)] = None,
    val_split: Annotated[float, typer.Option(help="Fraction held out for val when DATA has no val/.", rich_help_panel=TRAIN_PANEL)] = T.val_split,
    seed: Annotated[int, typer.Option(help="Random seed (data split, init, shuffling, augmentation).", rich_help_panel=TRAIN_PANEL)] = T.seed,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps.", rich_help_panel=TRAIN_PANEL)] = T.device,
    load: Annotated[str, typer.Option(help="Training set: memory (decoded once), disk (read per batch by --workers processes; with --cache, videos decode once), auto (disk above 2 GiB decoded).", rich_help_panel=TRAIN_PANEL)] = T.load,
    workers: Annotated[int | None, typer.Option(help="DataLoader worker processes with --load disk (0: the main process), else decoding threads. Default: by size and cores.", rich_help_panel=TRAIN_PANEL)] = T.workers,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run folder (default: runs/train/exp, exp2, ...).")] = None,
    exist_ok: Annotated[bool, typer.Option(help="Allow --out to be a folder that already holds files (they may be replaced).")] = False,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this folder from its last.pt, with its own data and settings (no other option goes with it).")] = None,
    devices: Annotated[int, typer.Option(help="Train on N processes with DistributedDataParallel on this machine (runs torchrun; one per GPU, or gloo on CPU).", rich_help_panel=TRAIN_PANEL)] = 1,
):
    """Train a model on a folder of images or videos and write a run folder (checkpoints, metrics, plots)."""
    given = given_options(ctx)

    def work():
        from lstmimg.cli.render import TrainDisplay
        from lstmimg.data.folders import detect_kind

        if devices < 1:
            raise LstmimgError(f"--devices must be >= 1, got {devices}")
        if resume is not None and given - RESUME_KEEPS:
            names = ", ".join(sorted(p.opts[0] for p in ctx.command.params if p.name in given - RESUME_KEEPS))  # as typed: --fit, not fit_mode
            raise LstmimgError(f"--resume continues {resume} with its own data and settings; remove {names}")
        launcher = devices > 1 and "WORLD_SIZE" not in os.environ
        if resume is None:  # every option and the data folder checked here, before any process starts
            source = data or bundled_digits()
            model_cfg = ModelConfig(
                name=model or DEFAULT_MODELS[detect_kind(source)], scan=scan, patch=patch, embed=embed, rnn=rnn, hidden=hidden, layers=layers,
                bidirectional=bidirectional, pool=pool, dropout=dropout, fuse_global=fuse_global, backbone=backbone,
                backbone_weights=str(backbone_weights) if backbone_weights else None, pretrained=pretrained, weights=weights, freeze_backbone=freeze_backbone,
                motion=motion, fusion=fusion, fit=fit_mode,
            )
            train_cfg = TrainConfig(
                epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, weight_decay=weight_decay,
                schedule=schedule, warmup=warmup, label_smoothing=label_smoothing, augment=augment, clip_grad=clip_grad,
                patience=patience, min_epochs=min_epochs, cooldown=cooldown, class_weights=class_weights, sampler=sampler, val_split=val_split, seed=seed, device=device,
                workers=workers, load=load, img_size=parse_size(img_size), clip_len=clip_len, clips_per_video=clips_per_video, frame_stride=frame_stride, val_clips=val_clips,
                cache=str(cache) if cache else None, amp=amp, compile=compile_cnn, tensorboard=tensorboard, report=report, exclude=excluded(exclude), feature_cache=feature_cache,
                unfreeze_after=unfreeze_after, backbone_lr_scale=backbone_lr_scale,
            )
            if train_cfg.unfreeze_after is not None and not model_cfg.freeze_backbone:
                raise LstmimgError("--unfreeze-after needs --freeze-backbone (the backbone is trained from the start otherwise)")
            if launcher and out_dir is not None and out_dir.exists() and not exist_ok and (not out_dir.is_dir() or any(out_dir.iterdir())):
                raise LstmimgError(f"{out_dir}: folder exists and is not empty; choose another --out, or --exist-ok to write into it")
            if launcher and out_dir is not None:  # a folder no process can make: one line here, not an error and a traceback per process
                from lstmimg.files import check_output_folder

                check_output_folder(out_dir, "--out")
        elif launcher and not (resume / "config.json").is_file():
            raise LstmimgError(f"{resume}/config.json: missing or unreadable; cannot resume this run")
        if launcher:
            from lstmimg.data.folders import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, split_folder
            from lstmimg.engine.infer.loading import resolve_device

            if resume is None:
                split_folder(source, val_split, seed, VIDEO_EXTENSIONS if detect_kind(source) == "video" else IMAGE_EXTENSIONS)
            resolve_device(device)
            raise typer.Exit(launch_workers(devices, "train")[0])

        from lstmimg.engine.train.training import fit

        if resume is not None:  # the run's own data and settings: nothing here to build
            with TrainDisplay(out, err) as progress:
                summary = fit(callback=progress.callback, resume=resume)
            if summary.get("already_finished"):
                err.print(f"{resume}: already finished ({summary.get('stop_reason') or str(summary['epochs']) + ' epochs'}); nothing to resume", highlight=False, soft_wrap=True)
                progress.print_summary(summary)
                return
        else:
            with TrainDisplay(out, err) as progress:
                summary = fit(source, model_cfg, train_cfg, out_dir, progress.callback, exist_ok=exist_ok)
        if summary.get("rank", 0) == 0:  # under torchrun, rank 0 reports for all
            progress.print_summary(summary)

    run_guarded(work)


@app.command()
def predict(
    paths: Annotated[list[str], typer.Argument(help="Image or video files, folders (recursive) or glob patterns.")],
    model: Annotated[Path | None, typer.Option(help="Run folder, checkpoint or .onnx file. Default: the newest run in ./runs/train of the kind most inputs are, else the bundled model.")] = None,
    topk: Annotated[int, typer.Option(help="How many top classes to give.")] = 5,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON array to stdout at the end (small runs).")] = False,
    jsonl: Annotated[str | None, typer.Option("--jsonl", help="Write one JSON object a line to this file (- for stdout), as results come.")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write rows to this CSV file, as results come.")] = None,
    resume: Annotated[bool, typer.Option(help="Keep what the --jsonl / --csv file holds and classify only the inputs it lacks.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --jsonl / --csv file.")] = False,
    batch_size: Annotated[int, typer.Option(help="Images, or video clips, per model call.")] = 64,
    workers: Annotated[int | None, typer.Option(help="Decoding processes (0: a thread of this one). Default: one per core, up to 4.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps.")] = "auto",
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    devices: Annotated[int, typer.Option(help="Split the inputs over N processes on this machine (runs torchrun; one GPU each, or a share of the cores); needs --jsonl FILE or --csv FILE.")] = 1,
    report: Annotated[Path | None, typer.Option(help="Write the review page to this folder (DIR/index.html: open it from disk): every result with its thumbnail, least confident first.")] = None,
):
    """Classify images or videos with a trained model: a table, or results streamed to JSON Lines / CSV."""

    def work():
        check_min("--topk", topk, 1)
        check_min("--batch-size", batch_size, 1)
        check_min("--devices", devices, 1)
        if workers is not None:
            check_min("--workers", workers, 0)
        from lstmimg.engine.infer.outputs import check_output, parts_of
        from lstmimg.files import check_distinct_outputs

        targets = [(None if jsonl == "-" else Path(jsonl), "jsonl")] if jsonl else []
        targets += [(csv_file, "csv")] if csv_file else []
        check_distinct_outputs([(f"--{fmt}", target) for target, fmt in targets] + [("--report", report / "index.html" if report else None)], paths)
        for target, fmt in targets:
            if target is not None:
                check_output(target, f"--{fmt}", resume, overwrite)
        if (resume or overwrite) and not any(t for t, _ in targets) and not (overwrite and report):
            raise LstmimgError(f"--{'resume' if resume else 'overwrite'} applies to a result file: give --jsonl FILE or --csv FILE")
        if report is not None:
            from lstmimg.engine.review.report import check_report_folder

            if devices > 1 or resume:
                raise LstmimgError("--report is written by one process from the start; with --devices or --resume, build it afterwards: lstmimg report FILE.jsonl")
            check_report_folder(report, overwrite)
        if json_out and jsonl == "-":
            raise LstmimgError("--json and --jsonl -: both write to stdout; choose one")
        sharded = devices > 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1
        if sharded and (json_out or not any(t for t, _ in targets) or jsonl == "-"):
            raise LstmimgError("several processes write their results to files: give --jsonl FILE or --csv FILE (and no --json or --jsonl -)")
        if devices > 1 and "WORLD_SIZE" not in os.environ:  # inputs, model and device checked here, before any process starts
            inputs_and_model(paths, model, backend, device, say=False)
            code, signalled = launch_workers(devices, "predict")
            left = [t for t, _ in targets if t is not None and parts_of(t)]
            if signalled:
                stopped = Interrupted(f"results so far are beside {left[0]}; run the same command with --resume to go on" if left else "nothing written")
                stopped.exit_code = code
                raise stopped
            if code and left:
                raise LstmimgError(f"a process stopped (exit {code}): the parts written so far stay beside {left[0]}; run the same command with --resume to complete them")
            raise typer.Exit(code)  # 1: some inputs were unreadable (each named by the process that met it)

        from lstmimg.cli.render import CollectionDisplay
        from lstmimg.engine.infer.collection import classify_to_files
        from lstmimg.files import json_text

        main = int(os.environ.get("RANK", "0")) == 0
        ckpt, mine, other = inputs_and_model(paths, model, backend, device, say=main)
        fits = not out.is_terminal or len(mine) <= max(1, out.size.height - 8)  # a table, when it fits on the screen (or goes to a pipe)
        show_table = not targets and not json_out and fits
        display = CollectionDisplay(err, ckpt.kind, enabled=main and not show_table and not json_out)
        held: list[dict] = []  # for --json and the table only: a file output holds nothing here

        def on_batch(batch) -> None:
            display.advance(batch)
            if json_out or show_table:
                held.extend(batch.results)

        page = None
        if report is not None:
            from lstmimg.engine.review.report import ReportWriter

            page = ReportWriter(report, ckpt.kind, ckpt.classes, f"lstmimg predict: {len(mine)} {ckpt.kind}s", labelled=False, overwrite=overwrite,
                                scored=f"Model: {ckpt.path}")
            for path, why in other:
                page.skip(path, why)
        with display:
            try:
                summary = classify_to_files(mine, ckpt, targets, resume, overwrite, topk, batch_size, device, workers, display.start, on_batch, page)
            except KeyboardInterrupt as e:
                if sharded:  # stopped by the launcher or by torchrun (another process died): the launcher says what to do
                    raise typer.Exit(signal_exit_code(e)) from None
                files_ = ", ".join(str(t) for t, _ in targets if t is not None)
                stopped = Interrupted(f"results so far are in {files_}; run the same command with --resume to go on" if files_ else "nothing written")
                stopped.exit_code = signal_exit_code(e)
                raise stopped from None
        if json_out:
            sys.stdout.write(json_text(held))
        elif show_table:
            out.print(results_table(held, ckpt.kind, out.width))
        display.summary(summary, other, [t for t in targets if t[0] is not None], hidden=not targets and not json_out and not fits)  # every process names its unreadable files
        if "report" in summary:
            err.print(f"report: {summary['report']['index']} ({summary['report']['samples']} samples, {summary['report']['bytes'] / 1e6:.1f} MB)", markup=False, highlight=False)
        if (summary["skipped_all"] if main else 0) or (display.errors and summary["world"] == 1):
            raise typer.Exit(1)  # under torchrun, process 0 gives the exit code for all

    run_guarded(work)


def results_table(rows: list[dict], kind: str, width: int) -> Table:
    """predict's table: a row a file, the label, its probability and two runners-up (--json / --csv keep
    them all). A path too long for ``width`` keeps its end, where the file name is: "…/vertical/003.png"."""
    from rich.markup import escape

    video = kind == "video"
    tops = ["  ".join(f"{t['label']} {t['prob']:.3f}" for t in r["top"][1:3]) for r in rows]
    others = max(map(len, [r["label"] for r in rows] + ["label"])) + 5 + max(map(len, tops + ["top"])) + (7 + 7 if video else 0)
    room = max(16, width - others - 2 * (4 + 2 * video) - 2)  # padding around every column
    shown = lambda path: path if len(path) <= room else "…" + path[len(path) - room + 1 :]  # noqa: E731
    table = Table(kind, "label", "prob", "top", *(("frames", "seconds") if video else ()), box=None, header_style="bold")
    for r, top in zip(rows, tops):
        table.add_row(escape(shown(r["path"])), escape(r["label"]), f"{r['prob']:.3f}", escape(top), *((str(r["frames"]), f"{r['seconds']}") if video else ()))
    return table


def inputs_and_model(paths: list[str], model, backend: str, device: str, say: bool):
    """``predict``'s model (by the kind most inputs are), the inputs of its kind and ``(path, reason)``
    for the others; none of its kind is an error. The launcher of ``--devices N`` checks this too."""
    from lstmimg.data.folders import expand_inputs
    from lstmimg.engine.infer.collection import likely_kind, split_kinds

    files = expand_inputs(paths)
    ckpt, _ = open_model(model, likely_kind(files), None, backend, device, say=say)
    mine, other = split_kinds(files, ckpt.kind)
    if not mine:
        raise LstmimgError(f"{paths[0] if len(paths) == 1 else 'the inputs'}: no {ckpt.kind}s among {len(files)} file{'s' if len(files) > 1 else ''} (the model is {'an image' if ckpt.kind == 'image' else 'a video'} model)")
    return ckpt, mine, other


def launch_workers(devices: int, command: str) -> tuple[int, bool]:
    """Run this same `lstmimg COMMAND` on ``devices`` processes (``cli.launch``, torchrun); their exit
    code, and whether this process was stopped by a signal."""
    from lstmimg.cli.launch import launch, without_devices

    err.print(f"starting {devices} processes: torchrun --nproc_per_node={devices} -m lstmimg {command} {' '.join(without_devices(sys.argv[2:]))}", highlight=False, soft_wrap=True)
    return launch(devices, command, without_devices(sys.argv[2:]))


@app.command("eval")
def evaluate(
    data: Annotated[Path, typer.Argument(help="Folder of class folders, or a root with train/ val/ test/.")],
    model: Annotated[Path | None, typer.Option(help="Run folder or checkpoint (default as for predict).")] = None,
    split: Annotated[str | None, typer.Option(help="Which split of a root to use (default: test if present, else val). On the folder a run split itself, val scores the files that run held out.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps.")] = "auto",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Also write report.json, confusion_matrix.png and mistakes.png (the samples it gets wrong, most confident first) to this folder.")] = None,
):
    """Accuracy, per-class precision / recall / F1 and the confusion matrix on labelled images or videos."""

    def work():
        from lstmimg.engine.review.evaluation import evaluate as evaluate_folder
        from lstmimg.files import json_text

        report = evaluate_folder(data, model, split, device, out_dir)
        err.print(f"scored: {report['split']}", highlight=False, soft_wrap=True)
        if report["overlap_with_training"]:
            err.print(f"[yellow]warning:[/] {report['overlap_with_training']} of {report['samples'] + len(report['skipped'])} files scored were in the run's training split, so these figures overstate it"
                      f"{'' if split == 'val' else ' (--split val scores the files the run held out)'}", highlight=False, soft_wrap=True)
        if json_out:
            sys.stdout.write(json_text(report))
        else:
            print_report(report, out_dir)
        for message in report["errors"]:  # as predict: each unreadable file named, the rest scored, exit 1
            err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        if report["skipped"]:
            raise typer.Exit(1)

    run_guarded(work)


def print_report(report: dict, out_dir: Path | None) -> None:
    """``eval``'s report as tables on stdout (where its files went on stderr)."""
    clips = f" ({report['clips_per_video']} clips each)" if report["kind"] == "video" else ""
    out.print(f"[bold]{report['data']}[/]  model {report['model']}  {report['samples']} {report['kind']}s{clips}  accuracy [bold]{report['accuracy']:.4f}[/]"
              f"  macro-F1 {report['macro_f1']:.4f}  balanced accuracy {report['balanced_accuracy']:.4f}", highlight=False, soft_wrap=True)
    table = Table("class", "precision", "recall", "f1", "support", header_style="bold")
    for row in report["per_class"]:
        table.add_row(row["class"], f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    out.print(table)
    cm = Table("true \\ pred", *report["classes"], title="confusion matrix", header_style="bold")
    for name, row in zip(report["classes"], report["confusion_matrix"]):
        cm.add_row(name, *(f"[bold]{v}[/]" if i == j else (str(v) if v else "[dim]0[/]") for j, v in enumerate(row) for i in [report["classes"].index(name)]))
    out.print(cm)
    if out_dir is not None:
        err.print(f"report, confusion matrix and mistakes ({report['mistakes']} wrong) in {out_dir}", highlight=False, soft_wrap=True)


def given_options(ctx: typer.Context) -> set[str]:
    """Names of the options the user gave on the command line (not left at their defaults)."""
    return {name for name in ctx.params if ctx.get_parameter_source(name) is not None and ctx.get_parameter_source(name).name not in ("DEFAULT", "DEFAULT_MAP")}


def excluded(lists: list[Path] | None) -> tuple[str, ...]:
    """The files ``--exclude`` lists name (numpy, which reading them imports, stays out of `lstmimg --help`)."""
    from lstmimg.data.folders import read_path_list

    return tuple(p for f in lists or [] for p in read_path_list(f))

