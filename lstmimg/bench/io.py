"""Bench sections that run outside the model: video decoding and command start-up."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from lstmimg.bench.timing import Timing, measure


@dataclass
class VideoBench:
    clip: str
    frames: int
    decode_fps: float  # plain cv2.VideoCapture.read() loop
    decode_resize_fps: float  # plain loop plus resize to the model's input
    end_to_end_fps: float  # lstmimg video (classify_video), same process
    ratio: float  # end-to-end time / decode-only time
    decode: Timing
    end_to_end: Timing
    flow_ms_per_frame: float = 0.0  # DIS optical flow (motion.PRESET) between two frames at the model's size
    decode_ms_per_frame: float = 0.0  # decoding one frame of the clip
    flow_end_to_end_fps: float = 0.0  # lstmimg video with the same model taking --motion flow (untrained twin)
    flow_ratio: float = 0.0  # its time / decode-only time
    onnx_end_to_end_fps: float = 0.0  # lstmimg video with the model exported to ONNX (0: ONNX Runtime not installed)
    onnx_ratio: float = 0.0  # its time / decode-only time


def default_clip(folder: Path | None = None, frames: int = 300) -> Path:
    """A 1280x720 clip (mp4v, 30 fps) made once from a bundled clip, upscaled and looped: the frame
    size the video bar is about, without shipping a large file."""
    import tempfile

    import cv2

    from lstmimg.data.video_io import VideoWriter, read_video
    from lstmimg.sample import sample_data_dir

    path = (folder or Path(tempfile.gettempdir())) / "lstmimg-bench-720p.mp4"
    if path.is_file():
        return path
    source, _ = read_video(sorted((sample_data_dir() / "clips" / "val" / "left").iterdir())[0])
    writer = VideoWriter(path, 30, (720, 1280))
    for i in range(frames):
        writer.write(cv2.resize(source[i % len(source)][:, :, ::-1], (1280, 720), interpolation=cv2.INTER_LINEAR))
    writer.close()
    return path


def bench_video(path: str | Path, repeats: int = 3, model: str | Path | None = None) -> VideoBench:
    """Decode-only, decode+resize and `lstmimg video` end to end on one clip."""
    import cv2

    from lstmimg.engine.infer.loading import load_checkpoint
    from lstmimg.engine.infer.timeline import classify_video
    from lstmimg.runs import resolve_model

    ckpt = load_checkpoint(resolve_model(model, "video")[0], kind="video")
    h, w = ckpt.config.img_size

    def decode(resize: bool) -> int:
        cap = cv2.VideoCapture(str(path))
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if resize:
                cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
            n += 1
        cap.release()
        return n

    frames = decode(False)
    decode_t = measure(lambda: decode(False), repeats)
    resize_t = measure(lambda: decode(True), repeats)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as `lstmimg video` runs on CPU: the decoder gets the other cores
    try:
        e2e_t = measure(lambda: classify_video(path, ckpt), repeats)
        flow_ckpt = flow_twin(ckpt)
        flow_t = measure(lambda: classify_video(path, flow_ckpt), repeats)
        onnx_t = onnx_video_time(path, ckpt, repeats)
    finally:
        torch.set_num_threads(threads)
    return VideoBench(str(path), frames, frames / decode_t.median, frames / resize_t.median, frames / e2e_t.median, round(e2e_t.median / decode_t.median, 3), decode_t, e2e_t,
                      round(flow_frame_ms((h, w), repeats), 3), round(decode_t.median / frames * 1000, 3), frames / flow_t.median, round(flow_t.median / decode_t.median, 3),
                      frames / onnx_t if onnx_t else 0.0, round(onnx_t / decode_t.median, 3) if onnx_t else 0.0)


def onnx_video_time(path, ckpt, repeats: int) -> float:
    """Median seconds of ``lstmimg video`` on ``path`` with ``ckpt`` exported to ONNX; 0 without ONNX Runtime."""
    import tempfile

    from lstmimg.engine.infer.loading import load_checkpoint
    from lstmimg.engine.infer.timeline import classify_video
    from lstmimg.errors import LstmimgError

    with tempfile.TemporaryDirectory() as tmp:
        try:
            from lstmimg.engine.infer.export import export_model

            onnx_ckpt = load_checkpoint(export_model(ckpt.path, Path(tmp) / "video.onnx", verify=False)["path"], kind="video")
        except (ImportError, LstmimgError):
            return 0.0
        return measure(lambda: classify_video(path, onnx_ckpt), repeats).median


def flow_twin(ckpt):
    """``ckpt``'s model as it would be trained with ``--motion flow`` (untrained: the timing does not
    depend on the weights)."""
    import dataclasses

    from lstmimg.data.clips import motion_stride
    from lstmimg.data.motion import normalization, settings
    from lstmimg.models.registry import build_model

    config = ckpt.config.replace(motion="flow", in_channels=5)
    mean, std = normalization("flow")
    meta = {**ckpt.meta, "motion": settings("flow", motion_stride(ckpt.meta.get("frame_stride", 1)))}
    return dataclasses.replace(ckpt, model=build_model(config).eval(), config=config, mean=ckpt.mean[:3] + mean, std=ckpt.std[:3] + std, meta=meta)


def flow_frame_ms(size: tuple[int, int], repeats: int, frames: int = 50) -> float:
    """Milliseconds of ``motion.MotionStream`` per frame at ``size``, on a panning textured view."""
    import numpy as np

    from lstmimg.data.motion import MotionStream

    rng = np.random.default_rng(0)
    h, w = size
    texture = rng.integers(0, 255, (h, w + 2 * frames, 3), dtype=np.uint8)
    views = [np.ascontiguousarray(texture[:, 2 * t : 2 * t + w]) for t in range(frames)]

    def run():
        stream = MotionStream("flow")
        for v in views:
            stream.add(v)

    return measure(run, repeats).median / frames * 1000


@dataclass
class StartupBench:
    import_torch_s: float
    help_s: float
    predict_s: float
    help_ratio: float
    predict_ratio: float  # lstmimg predict one.png / python -c "import torch"


def bench_startup(repeats: int = 5, warm: bool = True) -> StartupBench:
    """`lstmimg --help` and a one-image `predict` (bundled model) in fresh processes, against importing torch;
    ``warm``: a first round, dropped, fills the file cache (``--quick`` goes without: it checks, not measures)."""
    from lstmimg.sample import sample_data_dir

    image = sorted((sample_data_dir() / "digits" / "val" / "7").iterdir())[0]
    cli = [sys.executable, "-m", "lstmimg"]
    commands = {"torch": [sys.executable, "-c", "import torch"], "help": cli + ["--help"], "predict": cli + ["predict", str(image), "--json"]}
    times: dict[str, list[float]] = {k: [] for k in commands}
    for round_ in range(repeats + warm):  # with warm, round 0 warms the file cache and is dropped; rounds interleave
        for key, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            if round_ or not warm:
                times[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return StartupBench(med["torch"], med["help"], med["predict"], round(med["help"] / med["torch"], 3), round(med["predict"] / med["torch"], 3))


