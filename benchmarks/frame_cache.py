"""What the frame cache saves on the bundled clips, and epoch times with and without it.

    python benchmarks/frame_cache.py

lstmimg decodes every video once per run, into memory, so epochs never decode: the cache saves the
decoding at the start of every later run. Measured: decoding all bundled clips (train + val) without
a cache, filling the cache, and reading them back from it; then one training run each way.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from lstmimg import clips as V
from lstmimg.config import TrainConfig
from lstmimg.data import VIDEO_EXTENSIONS, split_folder
from lstmimg.engine import fit
from lstmimg.sample import sample_data_dir


def main() -> None:
    data = sample_data_dir() / "clips"
    splits = split_folder(data, extensions=VIDEO_EXTENSIONS)
    size = (32, 32)
    work = Path(tempfile.mkdtemp())
    cache = work / "cache"

    def load(cache_dir) -> float:
        t0 = time.perf_counter()
        for split in splits.values():
            V.decode_videos(split, size, cache=cache_dir)
        return time.perf_counter() - t0

    no_cache = [load(None) for _ in range(3)]
    fill = load(cache)
    warm = [load(cache) for _ in range(3)]
    runs = {}
    for name, cache_dir in (("no cache", None), ("warm cache", cache)):
        t0 = time.perf_counter()
        summary = fit(data, None, TrainConfig(epochs=3, cache=str(cache_dir) if cache_dir else None), out=work / name.replace(" ", "_"))
        rows = list(csv_rows(work / name.replace(" ", "_") / "metrics.csv"))
        runs[name] = {"wall_s": round(time.perf_counter() - t0, 2), "epoch_seconds": [float(r["seconds"]) for r in rows], "val_accuracy": summary["val_accuracy"]}
    result = {
        "videos": sum(len(s.paths) for s in splits.values()),
        "decode_all_no_cache_s": round(statistics.median(no_cache), 3),
        "fill_cache_s": round(fill, 3),
        "decode_all_warm_cache_s": round(statistics.median(warm), 3),
        "load_speedup": round(statistics.median(no_cache) / statistics.median(warm), 2),
        "runs": runs,
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / "frame_cache.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work)


def csv_rows(path: Path):
    import csv

    with open(path) as f:
        yield from csv.DictReader(f)


if __name__ == "__main__":
    main()
