"""The soak of issue 29: several live sources followed for a long time while one of them drops every minute.

    python benchmarks/soak.py [--minutes 10] [--sources 4] [--out benchmarks/results/soak.json]

Each source is an MJPEG stream over HTTP on 127.0.0.1 (320x136, 25 fps), served by a process of its own;
every minute one of them (in turn) is stopped for 5 s and started again on the same port, as a camera that
reboots. One `lstmimg video URL ... --jsonl soak.jsonl` (the bundled clips model, 4-frame windows) follows
them all; its resident memory is sampled every 10 s. At the end it is stopped with SIGTERM and the JSON
lines are checked: per source, window times only grow, no window appears twice, and every `lost` has its
`reopened`. The bars: RSS within 20 MB of its 1-minute value for the rest of the run, times monotonic,
every window once.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

sys.path.insert(0, str(HERE))
from streams import serve as serve_for  # noqa: E402  (the same MJPEG server in another process)


def serve(port: int = 0) -> tuple[subprocess.Popen, int]:
    """An MJPEG stream (320x136, 25 fps) served by another process, on ``port`` (0: a free one)."""
    return serve_for(1e9, port)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def check(lines: list[dict], urls: list[str]) -> dict:
    """Per source: windows, whether their times only grow, windows seen twice, lost / reopened events."""
    out = {}
    for url in urls:
        mine = [e for e in lines if e.get("source") == url]
        starts = [e["start"] for e in mine if "start" in e]
        out[url] = {"windows": len(starts), "monotonic": all(a < b for a, b in zip(starts, starts[1:])), "twice": len(starts) - len(set(starts)),
                    "lost": sum(e.get("event") == "lost" for e in mine), "reopened": sum(e.get("event") == "reopened" for e in mine),
                    "dropped_frames": sum(e.get("dropped", 0) for e in mine)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "soak.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lstmimg-soak-"))
    servers = [serve() for _ in range(args.sources)]
    ports = [port for _, port in servers]
    urls = [f"http://127.0.0.1:{port}/cam{i}.mjpg" for i, port in enumerate(ports)]
    jsonl = work / "soak.jsonl"
    video = subprocess.Popen([sys.executable, "-m", "lstmimg", "video", *urls, "--jsonl", str(jsonl), "--window", "4", "--no-status"],
                             cwd=work, stdout=subprocess.DEVNULL, stderr=open(work / "stderr.txt", "w"))
    started = time.monotonic()
    samples, drops = [], []
    next_sample, next_drop, turn = 0.0, 60.0, 0
    try:
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            if video.poll() is not None:
                raise SystemExit(f"lstmimg video ended early (exit {video.returncode}): {(work / 'stderr.txt').read_text()[-2000:]}")
            if elapsed >= next_sample:
                samples.append({"s": round(elapsed, 1), "rss_mb": round(rss_mb(video.pid), 1)})
                next_sample += 10
            if elapsed >= next_drop:
                i = turn % args.sources
                servers[i][0].kill()
                servers[i][0].wait()
                time.sleep(5)
                servers[i] = serve(ports[i])
                drops.append({"s": round(elapsed, 1), "source": urls[i]})
                next_drop += 60
                turn += 1
            time.sleep(0.5)
        video.send_signal(signal.SIGTERM)
        code = video.wait(60)
    finally:
        for proc, _ in servers:
            proc.kill()
        if video.poll() is None:
            video.kill()
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    at_minute = next(s["rss_mb"] for s in samples if s["s"] >= 60)
    later = [s["rss_mb"] for s in samples if s["s"] >= 60]
    result = {"minutes": args.minutes, "sources": args.sources, "exit_code": code, "drops": drops, "rss_samples": samples,
              "rss_at_1_min_mb": at_minute, "rss_max_after_1_min_mb": max(later), "rss_min_after_1_min_mb": min(later),
              "rss_spread_after_1_min_mb": round(max(later) - min(later), 1), "per_source": check(lines, urls)}
    result["bars"] = {"rss_flat_within_20_mb": result["rss_spread_after_1_min_mb"] <= 20,
                      "times_monotonic": all(v["monotonic"] for v in result["per_source"].values()),
                      "every_window_once": all(v["twice"] == 0 for v in result["per_source"].values())}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("rss_samples", "drops")}, indent=2))


if __name__ == "__main__":
    main()
