"""The bars of following several sources at once (`lstmimg video SRC [SRC ...]`), on this machine.

    python benchmarks/streams.py [--work /tmp/lstmimg-streams] [--sections files,memory,slow,many] [--memory-s 600] [--slow-s 300]

- files: 4 files of 640x272 H.264 (60 s at 25 fps) in one command against the 4 as separate commands, one
  after another (2 rounds, alternating, medians); and in one process the windows of the 4 followed
  together (queued, `--no-drop`) against each followed alone: labels equal, largest probability difference.
- memory: 4 live MJPEG streams (320x136, 25 fps, served over HTTP on 127.0.0.1 by another process) followed by
  one `lstmimg video` for `--memory-s` seconds; its resident memory sampled every 10 s.
- slow: one live 25 fps stream and a model too slow for it (an lrcn on a ResNet-18 at 224x224, untrained:
  the time does not depend on the weights), `--slow-s` seconds dropping frames (the default for live
  sources), then as long queueing them (`--no-drop`): latency from a window's last frame read to its label,
  how far the labelled frames are behind the stream's real time, dropped frames, resident memory.
- many: N live 320x136 streams at 25 fps with the bundled clips model for 30 s, N = 8, 12, 16, ..., 96 until
  the latency's 95th percentile passes 1 s: windows/s, latency p50 / p95 and dropped frames per source.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from video_bars import make_h264  # noqa: E402

SERVER = """
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from conftest import MjpegServer
frames = []
for t in range(50):  # a bar sweeping across a noisy 320x136 scene
    img = np.random.default_rng(t).integers(0, 60, (136, 320)).astype(np.uint8)
    img[:, (t * 6) % 300 : (t * 6) % 300 + 20] = 230
    frames.append(img)
server = MjpegServer(frames, fps=25)
server.port = int(sys.argv[3])  # 0: any free port
server.start()
print(server.port, flush=True)
time.sleep(float(sys.argv[2]))
server.stop()
"""


def serve(seconds: float, port: int = 0) -> tuple[subprocess.Popen, int]:
    """An MJPEG server in another process for ``seconds`` (on ``port``, else a free one); every URL path
    on its port is a stream of its own."""
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(HERE.parent / "tests"), str(seconds), str(port)], stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed(cmd: list) -> float:
    started = time.perf_counter()
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"failed: {cmd}\n{result.stderr[-2000:]}")
    return time.perf_counter() - started


def files_section(work: Path) -> dict:
    from lstmimg.engine.infer.loading import load_checkpoint
    from lstmimg.engine.infer.streams import WindowEvent, follow
    from lstmimg.runs import BUNDLED_MODELS

    files = [make_h264(work / f"cam{i}.mp4", 60, 640, 272, fps=25) for i in range(4)]
    cli = [sys.executable, "-m", "lstmimg", "video"]
    apart, together = [], []
    for _ in range(2):
        apart.append(sum(timed([*cli, f, "--json", "--device", "cpu"]) for f in files))
        together.append(timed([*cli, *files, "--json", "--device", "cpu"]))
    ckpt = load_checkpoint(BUNDLED_MODELS["video"])
    windows = lambda events: [e for e in events if isinstance(e, WindowEvent)]  # noqa: E731
    alone = {str(f): windows(follow([f], ckpt, device="cpu")) for f in files}
    joint = windows(follow(files, ckpt, device="cpu", drop=False))
    same = all([w.label for w in alone[str(f)]] == [w.label for w in joint if w.source == str(f)] for f in files)
    worst = max(abs(x - y) for f in files for a, b in zip(alone[str(f)], [w for w in joint if w.source == str(f)]) for x, y in zip(a.probs, b.probs))
    return {"files": "4 x 640x272 H.264, 25 fps, 60 s", "windows_per_file": len(alone[str(files[0])]), "separate_commands_s": apart, "one_command_s": together,
            "ratio": statistics.median(together) / statistics.median(apart), "labels_equal": same, "max_abs_prob_diff": worst}


def memory_section(seconds: float) -> dict:
    proc, port = serve(seconds + 30)
    urls = [f"http://127.0.0.1:{port}/cam{i}.mjpg" for i in range(4)]
    cmd = [sys.executable, "-m", "lstmimg", "video", *urls, "--jsonl", "/dev/null", "--max-seconds", str(seconds), "--device", "cpu", "--no-status"]
    video = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = []
    started = time.monotonic()
    while video.poll() is None:
        time.sleep(10)
        if video.poll() is None:
            samples.append((round(time.monotonic() - started), round(rss_mb(video.pid), 1)))
    proc.kill()
    after_1min = [mb for t, mb in samples if t >= 60]
    return {"sources": 4, "seconds": seconds, "exit": video.returncode, "rss_mb_samples": samples,
            "rss_mb_at_1min": after_1min[0] if after_1min else None, "rss_mb_last": samples[-1][1] if samples else None,
            "rss_mb_max_after_1min": max(after_1min) if after_1min else None}


def slow_model():
    from lstmimg.checkpoint import Checkpoint
    from lstmimg.config import ModelConfig
    from lstmimg.models.registry import build_model

    config = ModelConfig(name="lrcn", in_channels=3, img_size=(224, 224), num_classes=4, backbone="resnet18")
    return Checkpoint(Path("slow.pt"), build_model(config).eval(), config, ["a", "b", "c", "d"], [0.5] * 3, [0.25] * 3, "video", {"clip_len": 8, "frame_stride": 1})


def follow_for(urls: list[str], ckpt, seconds: float, drop: bool | None, window: str | None = None) -> dict:
    from lstmimg.data.sources import SourceEvent
    from lstmimg.engine.infer.streams import follow

    per: dict[str, dict] = {u: {"latency": [], "dropped": 0, "windows": 0, "behind": []} for u in urls}
    opened: dict[str, float] = {}
    rss = []
    started = time.monotonic()
    for e in follow(urls, ckpt, window=window, device="cpu", drop=drop, max_seconds=seconds):
        now = time.monotonic()
        if isinstance(e, SourceEvent):
            if e.event == "opened":
                opened[e.source] = now
            continue
        p = per[e.source]
        p["latency"].append(e.latency_ms)
        p["dropped"] += e.dropped
        p["windows"] += 1
        p["behind"].append((now - opened[e.source]) - e.last_index / 25)  # the stream makes frame i at i / 25 s
        if not rss or now - rss[-1][0] >= 10:
            rss.append((now, rss_mb()))
    elapsed = time.monotonic() - started
    out = {}
    for url, p in per.items():
        lat = np.percentile(p["latency"], [50, 95]) if p["latency"] else [float("nan")] * 2
        out[url] = {"windows_per_s": round(p["windows"] / elapsed, 2), "latency_p50_ms": round(float(lat[0]), 1), "latency_p95_ms": round(float(lat[1]), 1),
                    "dropped": p["dropped"], "behind_s_first": round(p["behind"][0], 2) if p["behind"] else None,
                    "behind_s_last": round(p["behind"][-1], 2) if p["behind"] else None}
    return {"sources": out, "rss_mb_first": round(rss[0][1], 1) if rss else None, "rss_mb_last": round(rss[-1][1], 1) if rss else None}


def slow_section(seconds: float) -> dict:
    import torch

    torch.set_num_threads(1)  # as `lstmimg video` runs on CPU
    ckpt = slow_model()
    proc, port = serve(2 * seconds + 60)
    try:
        url = f"http://127.0.0.1:{port}/slow.mjpg"
        dropping = follow_for([url], ckpt, seconds, None)
        queueing = follow_for([url + "?queue"], ckpt, seconds, False)
    finally:
        proc.kill()
    return {"model": "lrcn on resnet18 at 224x224, 8-frame windows, stride 1", "seconds": seconds, "drop": dropping, "no_drop": queueing}


def many_section(seconds: float, counts: list[int]) -> dict:
    import torch

    from lstmimg.engine.infer.loading import load_checkpoint
    from lstmimg.runs import BUNDLED_MODELS

    torch.set_num_threads(1)
    ckpt = load_checkpoint(BUNDLED_MODELS["video"])
    runs, largest = {}, 0
    for n in counts:
        proc, port = serve(seconds + 30)
        try:
            result = follow_for([f"http://127.0.0.1:{port}/s{i}.mjpg" for i in range(n)], ckpt, seconds, None)
        finally:
            proc.kill()
        p95 = max(s["latency_p95_ms"] for s in result["sources"].values())
        runs[n] = {"worst_p95_ms": p95, **result}
        print(n, "sources: worst p95", p95, "ms", flush=True)
        if p95 >= 1000:
            break
        largest = n
    return {"seconds_each": seconds, "runs": runs, "largest_n_with_p95_under_1s": largest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/lstmimg-streams"))
    parser.add_argument("--sections", default="files,memory,slow,many")
    parser.add_argument("--memory-s", type=float, default=600)
    parser.add_argument("--slow-s", type=float, default=300)
    parser.add_argument("--many-s", type=float, default=30)
    parser.add_argument("--many", default="8,12,16,24,32,48,64,96", help="numbers of live sources to try, until p95 passes 1 s")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "streams.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    report = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report["cpus"] = os.cpu_count()
    sections = {"files": lambda: files_section(args.work), "memory": lambda: memory_section(args.memory_s),
                "slow": lambda: slow_section(args.slow_s), "many": lambda: many_section(args.many_s, [int(n) for n in args.many.split(",")])}
    for name in args.sections.split(","):
        report[name] = sections[name]()
        print(json.dumps({name: report[name]}, indent=2), flush=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
