"""Data loading: images/s with 0, 1, 2 DataLoader workers, and video epochs with and without the frame cache.

    python benchmarks/data_loading.py            # writes benchmarks/results/data_loading.json

Images (the bundled digits' 4,000 training PNGs): one pass of the streamed training set (decoding only,
no model) with 0, 1 and 2 worker processes, against decoding the set into memory; then two training
epochs of the default model each way (the second epoch's time and its wait for data).

Videos (the bundled clips, 3 epochs of the default model): held in memory; streamed without a cache
(every epoch decodes every video); streamed with a cold frame cache (the first epoch decodes and fills
it, later epochs read memory-mapped entries); with 2 workers and with none. Then the decoding of all
clips at the start of a run, without and from a warm cache, and the data pipeline alone: clips/s when
cutting one clip per training video, without a cache and from a warm one. Last, on longer videos (10 s,
320x240), the three ways a streamed clip can be read: decoding the video whole, decoding only up to the
clip, and from a warm cache; and training epochs on them with and without the cache.
"""

from __future__ import annotations

import csv
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lstmimg.config import TrainConfig
from lstmimg.data import clips as V
from lstmimg.data import loaders as L
from lstmimg.data.folders import VIDEO_EXTENSIONS, split_folder
from lstmimg.data.images import decode_split
from lstmimg.engine.train.plan import CLIP_STRIDE, MAX_VIDEO_SIDE, capped_size
from lstmimg.engine.train.training import fit
from lstmimg.sample import sample_data_dir


def epochs(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return [{"seconds": float(r["seconds"]), "data_seconds": float(r["data_seconds"])} for r in csv.DictReader(f)]


def rates(one_pass, passes: int = 3) -> list[float]:
    """Items per second of each of ``passes`` calls of ``one_pass`` (which returns how many it read)."""
    out = []
    for _ in range(passes):
        t0 = time.perf_counter()
        count = one_pass()
        out.append(round(count / (time.perf_counter() - t0), 1))
    return out


def image_rates(work: Path) -> dict:
    split = split_folder(sample_data_dir() / "digits")["train"]
    order = torch.randperm(len(split.paths), generator=torch.Generator().manual_seed(0))
    batches = [b.tolist() for b in order.split(64)]
    out = {"images": len(split.paths)}
    decode_split(split, 1, (28, 28))  # files into the page cache first, for every way alike
    t0 = time.perf_counter()
    decode_split(split, 1, (28, 28))
    out["decode_into_memory_img_per_s"] = round(len(split.paths) / (time.perf_counter() - t0), 1)
    for workers in (0, 1, 2):
        data = L.disk_images(split, 1, (28, 28), workers)
        # the first pass starts the workers; they stay for the next
        out[f"stream_{workers}_workers_img_per_s"] = rates(lambda data=data: sum(len(y) for _, y in data.batches(batches)))
        data.close()
    for name, cfg in (("memory", {"load": "memory"}), *((f"disk_{w}_workers", {"load": "disk", "workers": w}) for w in (0, 1, 2))):
        fit(sample_data_dir() / "digits", None, TrainConfig(epochs=2, **cfg), out=work / f"img_{name}")
        out[f"train_{name}_epoch2"] = epochs(work / f"img_{name}")[1]
    return out


def video_epochs(work: Path) -> dict:
    data = sample_data_dir() / "clips"
    out = {}
    runs = {
        "memory": {"load": "memory"},
        "disk_2_workers_no_cache": {"load": "disk", "workers": 2},
        "disk_2_workers_cache": {"load": "disk", "workers": 2, "cache": str(work / "cache2")},
        "disk_0_workers_no_cache": {"load": "disk", "workers": 0},
        "disk_0_workers_cache": {"load": "disk", "workers": 0, "cache": str(work / "cache0")},
    }
    for name, cfg in runs.items():
        t0 = time.perf_counter()
        summary = fit(data, None, TrainConfig(epochs=3, **cfg), out=work / f"vid_{name}")
        out[name] = {"wall_s": round(time.perf_counter() - t0, 2), "epochs": epochs(work / f"vid_{name}"), "val_accuracy": summary["val_accuracy"]}
    for workers in (2, 0):
        plain = statistics.median(e["seconds"] for e in out[f"stream_{workers}_workers_no_cache"]["epochs"][1:])
        cached = statistics.median(e["seconds"] for e in out[f"stream_{workers}_workers_cache"]["epochs"][1:])
        plain_data = statistics.median(e["data_seconds"] for e in out[f"stream_{workers}_workers_no_cache"]["epochs"][1:])
        cached_data = statistics.median(e["data_seconds"] for e in out[f"stream_{workers}_workers_cache"]["epochs"][1:])
        out[f"speedup_epochs_2_3_{workers}_workers"] = {"epoch": round(plain / cached, 2), "data_wait": round(plain_data / max(cached_data, 1e-3), 2)}
    splits = split_folder(data, extensions=VIDEO_EXTENSIONS)
    size = capped_size(V.infer_video_size(splits["train"].paths), MAX_VIDEO_SIDE)  # what lstmimg train reads them at
    train = splits["train"]
    draws = torch.rand(len(train.paths), generator=torch.Generator().manual_seed(0)).tolist()
    batches = [[(i, draws[i]) for i in b.tolist()] for b in torch.randperm(len(train.paths), generator=torch.Generator().manual_seed(0)).split(64)]
    V.decode_videos(train, size, cache=work / "cache_clips")  # a warm cache for the runs that use one
    for workers in (0, 2):  # the data pipeline alone: one pass cuts one clip per training video
        for name, cache in (("no_cache", None), ("warm_cache", work / "cache_clips")):
            stream = L.disk_clips(train, size, TrainConfig.clip_len, CLIP_STRIDE, cache, workers)
            out[f"clips_{workers}_workers_{name}_per_s"] = rates(lambda stream=stream: sum(len(y) for _, y in stream.batches(batches)))
            stream.close()
        plain, cached = (statistics.median(out[f"clips_{workers}_workers_{n}_per_s"]) for n in ("no_cache", "warm_cache"))
        out[f"speedup_pipeline_{workers}_workers"] = round(cached / plain, 2)

    def load(cache) -> float:
        t0 = time.perf_counter()
        for split in splits.values():
            V.decode_videos(split, size, cache=cache)
        return time.perf_counter() - t0

    no_cache = statistics.median(load(None) for _ in range(3))
    load(work / "cache_load")
    warm = statistics.median(load(work / "cache_load") for _ in range(3))
    out["decode_all_clips"] = {"no_cache_s": round(no_cache, 3), "warm_cache_s": round(warm, 3), "speedup": round(no_cache / warm, 2)}
    return out


def long_videos(work: Path, per_class: int = 12, frames: int = 300) -> dict:
    """Longer videos: 10-s 320x240 mp4v clips of a bar sliding left or right, ``per_class`` per class
    for training and a third of that for val. First the three ways a streamed clip can be read, in this
    process: decoding the video whole (what a cold cache does), decoding only up to the clip (no cache),
    and from a warm cache; then 3 training epochs streamed with 2 workers, without and with the cache,
    at the bundled clips' 32x32 frames (so that decoding, not the model, is most of an epoch)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    root = work / "long"
    for split, count in (("train", per_class), ("val", max(2, per_class // 3))):
        for name, direction in (("left", -1), ("right", 1)):
            folder = root / split / name
            folder.mkdir(parents=True)
            for k in range(count):
                writer = cv2.VideoWriter(str(folder / f"{k:02d}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30, (320, 240))
                offset = int(rng.integers(0, 300))
                for t in range(frames):
                    frame = rng.integers(0, 40, (240, 320, 3), dtype=np.uint8)
                    x = (offset + direction * 3 * t) % 300
                    frame[:, x : x + 20] = 255
                    writer.write(frame)
                writer.release()
    split = split_folder(root, extensions=VIDEO_EXTENSIONS)["train"]
    count, size = len(split.paths), capped_size(V.infer_video_size(split.paths), MAX_VIDEO_SIDE)
    clip_len, stride = TrainConfig.clip_len, CLIP_STRIDE
    draws = torch.rand(count, generator=torch.Generator().manual_seed(1)).tolist()
    cache = work / "long_cache"
    V.decode_videos(split, size, cache=cache)

    def whole(i):
        frames, _ = V.decode_cached(split.paths[i], size, None)
        start = V.clip_start(draws[i], len(frames), clip_len, stride)
        return frames[V.clip_indices(start, clip_len, stride, len(frames)).numpy()]

    ways = {"decode_whole": whole, "read_up_to_clip": L.VideoClips(split, size, clip_len, stride, None).__getitem__,
            "warm_cache": L.VideoClips(split, size, clip_len, stride, str(cache)).__getitem__}
    out = {"train_videos": count, "frames": frames, "source": "320x240 mp4v", "size": list(size)}
    for name, fn in ways.items():
        items = list(range(count)) if name == "decode_whole" else [(i, draws[i]) for i in range(count)]
        out[f"{name}_clips_per_s"] = rates(lambda fn=fn, items=items: [fn(item) for item in items] and len(items))
    for name in ("read_up_to_clip", "warm_cache"):
        out[f"{name}_vs_decode_whole"] = round(statistics.median(out[f"{name}_clips_per_s"]) / statistics.median(out["decode_whole_clips_per_s"]), 2)
    for name, extra in (("no_cache", {}), ("cache", {"cache": str(work / "long_fill_cache")})):
        fit(root, None, TrainConfig(epochs=3, batch_size=8, img_size=(32, 32), load="disk", workers=2, **extra), out=work / f"long_run_{name}")
        out[f"train_{name}_epochs"] = epochs(work / f"long_run_{name}")
    plain, cached = (statistics.median(e["seconds"] for e in out[f"train_{n}_epochs"][1:]) for n in ("no_cache", "cache"))
    out["speedup_epochs_2_3"] = round(plain / cached, 2)
    return out


def main() -> None:
    work = Path(tempfile.mkdtemp())
    try:
        result = {"torch_threads": torch.get_num_threads(), "images": image_rates(work), "videos": video_epochs(work), "long_videos": long_videos(work)}
    finally:
        shutil.rmtree(work)
    print(json.dumps(result, indent=2))
    (Path(__file__).parent / "results" / "data_loading.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
