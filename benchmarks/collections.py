"""The bars of classifying collections (`lstmimg predict` over folders), measured side by side.

    python benchmarks/collections.py [--work /tmp/collections] [--rounds 3] [--out benchmarks/results/collections.json]

- videos: 160 order-only clips (16 frames, `user_sets.order_videos`), a model trained on 80 others for one
  epoch; `predict --jsonl` against `eval` on the same folder (wall time of each command, alternating, medians),
  the probabilities `predict` writes against those of the eval path, and a shell loop of `lstmimg video`
  over the 160 files (once).
- images: 20,000 28x28 JPEGs (the bundled digits, shifted), the bundled digits model; `predict --jsonl`
  against a plain PyTorch loop (a DataLoader decoding with as many workers, the same model and batch 64,
  writing the same JSON lines), alternating, medians; peak RSS of `predict --jsonl` at 1,000 and 20,000.
- resume: `predict --jsonl` killed with SIGKILL at about half, then `--resume`: every path once, values equal
  to an uninterrupted run.
- devices: `--devices 2` against one process on the 20,000; torchrun with two local nodes (c10d rendezvous)
  on 2,000 of them against one process.
- ray: Ray Data `read_images` + `map_batches(BatchClassifier)` on the 2,000 against `predict` (when Ray is
  installed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from user_sets import digit_jpegs, order_videos

LSTMIMG = [sys.executable, "-m", "lstmimg"]

PLAIN = '''
import json, sys, torch
from pathlib import Path
from PIL import Image
from lstmimg.engine.infer.loading import load_checkpoint
folder, model, out, workers = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ckpt = load_checkpoint(model)
net, classes = ckpt.model.eval(), ckpt.classes
mean, std = torch.tensor(ckpt.mean).view(1, -1, 1, 1), torch.tensor(ckpt.std).view(1, -1, 1, 1)
paths = sorted(p for p in folder.rglob("*.jpg"))
class Files(torch.utils.data.Dataset):
    def __len__(self): return len(paths)
    def __getitem__(self, i):
        img = Image.open(paths[i]).convert("L").resize((28, 28), Image.Resampling.BILINEAR)
        return torch.from_numpy(__import__("numpy").array(img))[None], str(paths[i])
loader = torch.utils.data.DataLoader(Files(), batch_size=64, num_workers=workers)
with open(out, "w") as f, torch.inference_mode():
    for x, names in loader:
        probs = net((x.float() / 255 - mean) / std).softmax(1)
        top_p, top_i = probs.topk(5, dim=1)
        for name, ps, ids in zip(names, top_p.tolist(), top_i.tolist()):
            top = [{"label": classes[i], "prob": round(p, 5)} for p, i in zip(ps, ids)]
            f.write(json.dumps({"path": name, "label": top[0]["label"], "prob": top[0]["prob"], "top": top}) + "\\n")
        f.flush()
'''


def timed(cmd: list, **kwargs) -> float:
    started = time.perf_counter()
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{result.stderr[-2000:]}")
    return time.perf_counter() - started


def peak_rss_mb(cmd: list) -> float:
    result = subprocess.run(["/usr/bin/time", "-f", "%M", *map(str, cmd)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-2000:])
    return int(result.stderr.strip().splitlines()[-1]) / 1024


def rows(path: Path) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        assert r["path"] not in found, f"{r['path']} twice in {path}"
        found[r["path"]] = r
    return found


def videos_section(work: Path, rounds: int) -> dict:
    from lstmimg.config import clip_settings
    from lstmimg.data.clips import decode_videos
    from lstmimg.data.folders import labelled_folder
    from lstmimg.engine.infer.inference import Predictor, video_probs
    from lstmimg.engine.infer.loading import load_checkpoint

    if not (work / "order160").is_dir():
        order_videos(work / "order160", 40, seed=5)
        order_videos(work / "order_train", 20, seed=6)
    run = work / "order_run"
    if not (run / "best.pt").is_file():
        timed([*LSTMIMG, "train", work / "order_train", "--epochs", "1", "--out", run, "--exist-ok"])
    folder = work / "order160"
    evals, predicts = [], []
    for _ in range(rounds):
        evals.append(timed([*LSTMIMG, "eval", folder, "--model", run, "--json"]))
        predicts.append(timed([*LSTMIMG, "predict", folder, "--model", run, "--jsonl", work / "videos.jsonl", "--overwrite", "--topk", "4"]))
    ckpt = load_checkpoint(run)
    clip_len, stride, clips = clip_settings(ckpt.meta)
    split = labelled_folder(folder, "video", ckpt.classes)
    decoded = decode_videos(split, ckpt.config.img_size, motion=ckpt.config.motion, stride=stride)
    probs, _ = video_probs(Predictor.from_checkpoint(ckpt, "cpu"), decoded.videos, clip_len, stride, clips)  # what evaluate() computes
    got = rows(work / "videos.jsonl")
    worst = max(abs(t["prob"] - probs[i][ckpt.classes.index(t["label"])].item()) for i, p in enumerate(decoded.paths) for t in got[str(p)]["top"])
    started = time.perf_counter()
    for video in split.paths:
        subprocess.run([*LSTMIMG, "video", str(video), "--model", str(run), "--json"], capture_output=True, check=True)
    loop = time.perf_counter() - started
    return {"videos": len(split.paths), "motion": ckpt.config.motion, "eval_s": evals, "predict_s": predicts, "eval_median_s": statistics.median(evals),
            "predict_median_s": statistics.median(predicts), "predict_over_eval": statistics.median(predicts) / statistics.median(evals),
            "max_abs_diff_vs_eval": worst, "shell_loop_s": loop, "shell_loop_over_predict": loop / statistics.median(predicts)}


def images_section(work: Path, rounds: int) -> dict:
    from lstmimg.runs import BUNDLED_MODELS

    images = work / "images20k"
    if not images.is_dir():
        digit_jpegs(images, 20000)
    small = work / "images1k"
    if not small.is_dir():
        for path in sorted(images.rglob("*.jpg"))[:1000]:
            (small / path.parent.name).mkdir(parents=True, exist_ok=True)
            (small / path.parent.name / path.name).symlink_to(path)
    (work / "plain.py").write_text(PLAIN)
    model = BUNDLED_MODELS["image"]
    ours, plain = [], []
    for _ in range(rounds):
        plain.append(timed([sys.executable, work / "plain.py", images, model, work / "plain.jsonl", 2]))
        ours.append(timed([*LSTMIMG, "predict", images, "--model", model, "--jsonl", work / "one.jsonl", "--overwrite", "--workers", "2"]))
    a, b = rows(work / "one.jsonl"), rows(work / "plain.jsonl")
    same = sum(a[p]["label"] == b[p]["label"] for p in a)
    rss_1k = peak_rss_mb([*LSTMIMG, "predict", small, "--model", model, "--jsonl", work / "rss1k.jsonl", "--overwrite"])
    rss_20k = peak_rss_mb([*LSTMIMG, "predict", images, "--model", model, "--jsonl", work / "rss20k.jsonl", "--overwrite"])
    return {"images": len(a), "predict_s": ours, "plain_s": plain, "predict_median_s": statistics.median(ours), "plain_median_s": statistics.median(plain),
            "throughput_ratio": statistics.median(plain) / statistics.median(ours), "labels_equal_to_plain": same,
            "peak_rss_mb_1k": rss_1k, "peak_rss_mb_20k": rss_20k, "rss_growth_mb": rss_20k - rss_1k}


def resume_section(work: Path) -> dict:
    from lstmimg.runs import BUNDLED_MODELS

    out = work / "killed.jsonl"
    out.unlink(missing_ok=True)
    cmd = [*LSTMIMG, "predict", str(work / "images20k"), "--model", str(BUNDLED_MODELS["image"]), "--jsonl", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while not out.exists() or out.read_bytes().count(b"\n") < 10000:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = out.read_bytes()
    timed([*cmd, "--resume"])
    final, whole = rows(out), rows(work / "one.jsonl")
    return {"lines_at_kill": at_kill.count(b"\n"), "torn_tail_bytes": len(at_kill) - (at_kill.rfind(b"\n") + 1), "results_after_resume": len(final),
            "each_path_once": len(final) == len(whole) and set(final) == set(whole), "values_equal_to_uninterrupted": final == whole}


def devices_section(work: Path, single_s: float) -> dict:
    from lstmimg.runs import BUNDLED_MODELS

    model = BUNDLED_MODELS["image"]
    two = timed([*LSTMIMG, "predict", work / "images20k", "--model", model, "--jsonl", work / "two.jsonl", "--overwrite", "--devices", "2"])
    out = {"devices2_s": two, "one_process_median_s": single_s, "devices2_over_one": two / single_s,
           "devices2_equal_to_one": rows(work / "two.jsonl") == rows(work / "one.jsonl")}
    subset = work / "images2k"
    if not subset.is_dir():
        for path in sorted((work / "images20k").rglob("*.jpg"))[:2000]:
            (subset / path.parent.name).mkdir(parents=True, exist_ok=True)
            (subset / path.parent.name / path.name).symlink_to(path)
    timed([*LSTMIMG, "predict", subset, "--model", model, "--jsonl", work / "sub_one.jsonl", "--overwrite"])
    (work / "nodes.jsonl").unlink(missing_ok=True)
    node = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d",
            "--rdzv_endpoint", "localhost:29571", "--rdzv_id", "collections", "-m", "lstmimg", "predict", str(subset), "--model", str(model),
            "--jsonl", str(work / "nodes.jsonl")]
    started = time.perf_counter()
    procs = [subprocess.Popen(node, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    codes = [p.wait() for p in procs]
    out.update({"torchrun_two_nodes_s": time.perf_counter() - started, "torchrun_exit_codes": codes,
                "torchrun_two_nodes_equal_to_one": codes == [0, 0] and rows(work / "nodes.jsonl") == rows(work / "sub_one.jsonl")})
    return out


def ray_section(work: Path) -> dict:
    try:
        import ray
    except ImportError:
        return {"status": "ray not installed"}
    from lstmimg.engine.infer.ray_data import BatchClassifier
    from lstmimg.runs import BUNDLED_MODELS

    expected = {str(Path(p).resolve()): r["label"] for p, r in rows(work / "sub_one.jsonl").items()}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        started = time.perf_counter()
        ds = ray.data.read_images(str(work / "images2k"), include_paths=True)
        ds = ds.map_batches(BatchClassifier, fn_constructor_kwargs={"model": str(BUNDLED_MODELS["image"]), "device": "cpu"}, concurrency=1, batch_size=64)
        got = {str(Path(r["path"]).resolve()): r["label"] for r in ds.select_columns(["path", "label"]).take_all()}
        seconds = time.perf_counter() - started
    finally:
        ray.shutdown()
    return {"ray": ray.__version__, "images": len(got), "seconds": seconds, "labels_equal_to_predict": got == expected}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/lstmimg-collections"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sections", default="videos,images,resume,devices,ray")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "collections.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    report = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report["cpus"] = os.cpu_count()
    sections = args.sections.split(",")
    if "videos" in sections:
        report["videos"] = videos_section(args.work, args.rounds)
        print(json.dumps(report["videos"], indent=2), flush=True)
    if "images" in sections:
        report["images"] = images_section(args.work, args.rounds)
        print(json.dumps(report["images"], indent=2), flush=True)
    if "resume" in sections:
        report["resume"] = resume_section(args.work)
        print(json.dumps(report["resume"], indent=2), flush=True)
    if "devices" in sections:
        report["devices"] = devices_section(args.work, report["images"]["predict_median_s"])
        print(json.dumps(report["devices"], indent=2), flush=True)
    if "ray" in sections:
        report["ray"] = ray_section(args.work)
        print(json.dumps(report["ray"], indent=2), flush=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
