"""How long a run should last: the stopping rule, measured against the 15-epoch defaults and a plain loop.

    pip install '.[benchmarks]' && python benchmarks/stopping.py --old-tree DIR [--sets a,b] [--seeds 0 1 2]
        [--runs old,new,full,plain] [--work DIR] [--json FILE] [--replay-default]

On nine sets (the bundled digits and clips, and seven made here from scikit-image's real photographs or
drawn: images of 100 to 4,900 samples, videos of 160 to 320), for each seed, one after another and
each in a fresh process timed from outside:

- ``old``: ``lstmimg train DATA --seed S`` run from ``--old-tree`` (a checkout of the code before the
  stopping rule: ``git worktree add DIR COMMIT``), today's defaults as a user gets them;
- ``new``: the same command on this checkout (or ``--new-tree``);
- ``full``: this checkout with ``--patience 0`` (every planned epoch), on which ``--replay-default``
  replays today's default rule exactly (the rule changes where a run ends, not its epochs);
- ``plain``: a plain PyTorch loop of a few dozen lines, as people write one: fixed epochs (20 for
  images, 25 for videos), Adam at 1e-3, a small CNN+BiLSTM over rows for images, a CNN+LSTM over 16
  frames spread over each video; its accuracy is its last epoch's (its best epoch is kept too).

Each run's record keeps its per-epoch validation figures (``metrics.csv``), so stopping rules can be
replayed on the ``old`` runs (``--replay``) without training again. Results are appended as they come.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from image_defaults import OTHER_PHOTOS, faces
from motion import TRAIN_PHOTOS, VAL_PHOTOS, camera_videos
from user_sets import event_videos, order_videos, photo_crops, photo_folder, tilted_crops

from lstmimg.engine.train.stopping import StopRule, auto_rule, stop_reason

PLAIN_IMAGE = r'''
import sys, time, numpy as np, torch
from pathlib import Path
from PIL import Image
from torch import nn
torch.manual_seed(int(sys.argv[2]))
def load(split):
    root = Path(sys.argv[1]) / split
    classes = sorted(p.name for p in root.iterdir())
    xs, ys = [], []
    for c, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            img = Image.open(f).convert("RGB")
            img.thumbnail((128, 128))  # big photos shrunk, as a transforms.Resize would
            xs.append(np.asarray(img)); ys.append(c)
    return torch.tensor(np.stack(xs)).permute(0, 3, 1, 2).float() / 255, torch.tensor(ys)
t0 = time.time()
(xt, yt), (xv, yv) = load("train"), load("val")
mean, std = xt.mean((0, 2, 3), keepdim=True), xt.std((0, 2, 3), keepdim=True)
xt, xv = (xt - mean) / std, (xv - mean) / std
class Net(nn.Module):
    def __init__(self, k, w):
        super().__init__()
        self.cnn = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2))
        self.lstm = nn.LSTM(64 * (w // 4), 128, batch_first=True, bidirectional=True)
        self.head = nn.Linear(256, k)
    def forward(self, x):
        f = self.cnn(x)  # (B, 64, H/4, W/4): its rows are the sequence
        return self.head(self.lstm(f.permute(0, 2, 1, 3).flatten(2))[0].mean(1))
net = Net(int(yt.max()) + 1, xt.shape[-1])
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
best = acc = 0.0
for epoch in range(20):
    net.train()
    for idx in torch.randperm(len(xt)).split(32):
        loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
        opt.zero_grad(); loss.backward(); opt.step()
    net.eval()
    with torch.no_grad():
        acc = (torch.cat([net(b) for b in xv.split(256)]).argmax(1) == yv).float().mean().item()
    best = max(best, acc)
print(f"PLAIN {acc:.4f} {best:.4f} {time.time() - t0:.1f}")
'''

PLAIN_VIDEO = r'''
import sys, time, cv2, numpy as np, torch
from pathlib import Path
from torch import nn
torch.manual_seed(int(sys.argv[2]))
def load(split):
    xs, ys, classes = [], [], sorted(p.name for p in (Path(sys.argv[1]) / split).iterdir())
    for c, name in enumerate(classes):
        for f in sorted((Path(sys.argv[1]) / split / name).iterdir()):
            cap, frames = cv2.VideoCapture(str(f)), []
            while True:
                ok, bgr = cap.read()
                if not ok: break
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            idx = np.linspace(0, len(frames) - 1, 16).round().astype(int)  # 16 frames spread over the video
            xs.append(np.stack(frames)[idx]); ys.append(c)
    return torch.tensor(np.stack(xs)).permute(0, 1, 4, 2, 3).float() / 255, torch.tensor(ys)
t0 = time.time()
(xt, yt), (xv, yv) = load("train"), load("val")
class Net(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.cnn = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, 128), nn.ReLU())
        self.lstm, self.head = nn.LSTM(128, 128, batch_first=True), nn.Linear(128, k)
    def forward(self, x):
        b, t = x.shape[:2]
        return self.head(self.lstm(self.cnn(x.flatten(0, 1)).view(b, t, -1))[0][:, -1])
net = Net(int(yt.max()) + 1)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
best = acc = 0.0
for epoch in range(25):
    net.train()
    for idx in torch.randperm(len(xt)).split(16):
        loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
        opt.zero_grad(); loss.backward(); opt.step()
    net.eval()
    with torch.no_grad():
        acc = (torch.cat([net(b) for b in xv.split(64)]).argmax(1) == yv).float().mean().item()
    best = max(best, acc)
print(f"PLAIN {acc:.4f} {best:.4f} {time.time() - t0:.1f}")
'''

IMAGE_SETS = ("digits", "faces", "crops", "photos", "textures")
VIDEO_SETS = ("clips", "order", "variable", "camera")
HELD_OUT_SETS = ("tiles", "pans", "longorder")  # made after the rule that waits for the anneal was chosen, to check it on
HELD_OUT_VIDEO = ("pans", "longorder")


def make_set(name: str, work: Path) -> Path:
    """The set ``name``, made under ``work/sets`` once (the bundled ones are used where they are)."""
    from lstmimg.sample import sample_data_dir

    if name in ("digits", "clips"):
        return sample_data_dir() / name
    root = work / "sets" / name
    if (root / "val").is_dir():
        return root
    if name == "faces":  # 150 train / 50 val grey 25x25 faces and non-faces
        faces(root, seed=11)
    elif name == "crops":  # 672 / 168 crops of 14 photographs, val from parts never trained on
        photo_crops(root, 48, 12, seed=7)
    elif name == "photos":  # 160 / 40 JPEGs of 640x480, 4 classes
        photo_folder(root / "train", 40, seed=3)
        photo_folder(root / "val", 10, seed=4)
    elif name == "textures":  # 4,800 / 960 crops of 24x24 of 8 other photographs
        photo_crops(root, 600, 120, seed=12, side=24, photos=OTHER_PHOTOS)
    elif name == "order":  # 160 / 40 videos of 16 frames, the class only in the frames' order
        order_videos(root / "train", 40, seed=1)
        order_videos(root / "val", 10, seed=2)
    elif name == "variable":  # the same motion over 10 to 30 frames, 64x48
        order_videos(root / "train", 40, seed=5, frames=(10, 30), size=(48, 64))
        order_videos(root / "val", 10, seed=6, frames=(10, 30), size=(48, 64))
    elif name == "camera":  # 192 / 96 videos of 12 frames of a camera panning or zooming over photographs
        camera_videos(root / "train", TRAIN_PHOTOS, 48, seed=21)
        camera_videos(root / "val", VAL_PHOTOS, 24, seed=22)
    elif name == "tiles":  # 2,400 / 480 crops of 32x32 of 8 photographs
        photo_crops(root, 300, 60, seed=31, side=32, photos=TRAIN_PHOTOS[:8])
    elif name == "pans":  # 128 / 64 videos of 16 frames panning or zooming, the photographs of camera swapped round
        camera_videos(root / "train", VAL_PHOTOS + TRAIN_PHOTOS[8:], 32, seed=41, frames=16)
        camera_videos(root / "val", TRAIN_PHOTOS[:4], 16, seed=42, frames=16)
    elif name == "longorder":  # the order-only motion over 20 to 40 frames
        order_videos(root / "train", 40, seed=51, frames=(20, 40), size=(48, 64))
        order_videos(root / "val", 10, seed=52, frames=(20, 40), size=(48, 64))
    elif name == "longvar":  # the order-only motion over 30 to 90 frames, 60 val videos
        order_videos(root / "train", 40, seed=61, frames=(30, 90), size=(48, 64))
        order_videos(root / "val", 15, seed=62, frames=(30, 90), size=(48, 64))
    elif name == "tilt":  # 1,500 / 300 crops of 48x48 of a printed page, a photo of text and a brick wall, turned -10, 0 or +10 degrees (the class)
        tilted_crops(root, 500, 100, seed=91)
    elif name == "events":  # a disc then a bar, or a bar then a disc, over 30 to 90 frames, 60 val videos
        event_videos(root / "train", 80, seed=81)
        event_videos(root / "val", 30, seed=82)
    elif name == "slowpans":  # a camera panning or zooming slowly over photographs, 24 to 72 frames
        camera_videos(root / "train", TRAIN_PHOTOS, 40, seed=71, frames=(24, 72))
        camera_videos(root / "val", VAL_PHOTOS, 15, seed=72, frames=(24, 72))
    else:
        raise SystemExit(f"unknown set {name!r}")
    return root


def timed(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> tuple[float, float, str]:
    """Wall seconds, max RSS (GB) of the child, and its output."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2, done.stdout + done.stderr


def tree_env(tree: Path) -> dict:
    """The environment that runs the lstmimg of ``tree``."""
    return {**os.environ, "PYTHONPATH": str(tree)}


def train_run(data: Path, out: Path, seed: int, tree: Path, extra: list[str] = ()) -> dict:
    env = tree_env(tree)
    where = subprocess.run([sys.executable, "-c", "import lstmimg; print(lstmimg.__file__)"], capture_output=True, text=True, env=env, cwd=tree).stdout.strip()
    assert where.startswith(str(tree)), f"{where} is not from {tree}"
    wall, _, text = timed([sys.executable, "-m", "lstmimg", "train", str(data), "--out", str(out), "--seed", str(seed), *extra], env, tree)
    summary = json.loads((out / "summary.json").read_text())
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    keep = ("epoch", "val_acc", "val_loss", "seconds", "lr", "stop")
    return {"val_accuracy": summary["val_accuracy"], "wall_s": round(wall, 2), "train_seconds": summary["train_seconds"], "epochs": summary["epochs"],
            "best_epoch": summary["best_epoch"], "stop_reason": summary.get("stop_reason"), "args": list(extra), "first_lines": [ln for ln in text.splitlines()[:6]],
            "rows": [{k: r[k] for k in keep if k in r} for r in rows]}


def plain_run(data: Path, kind: str, seed: int, work: Path) -> dict:
    script = work / f"plain_{kind}.py"
    script.write_text(PLAIN_VIDEO if kind == "video" else PLAIN_IMAGE)
    wall, _, text = timed([sys.executable, str(script), str(data), str(seed)])
    last, best, _ = text.split("PLAIN")[1].split()
    return {"val_accuracy": float(last), "best_epoch_accuracy": float(best), "wall_s": round(wall, 2)}


def replay(results: dict, grid: list[tuple[float, float, float]] | None = None) -> list[dict]:
    """Each rule of ``grid`` (default: patience of 10-30% of the planned epochs, never before 0 to
    1/2 of them, with and without the val loss) replayed on the ``old`` runs: per set, the mean
    accuracy it would have kept (the best epoch up to its stop) less the full run's, and the wall time
    it would have taken (the full run's less the epochs it would not have run), as a fraction."""
    if grid is None:
        grid = [(p, m, loss) for p in (0.1, 0.2, 0.3) for m in (0, 0.25, 1 / 3, 0.5) for loss in (0.0, 0.05)]
    old = [r for r in results["runs"] if r["run"] == "old"]
    out = []
    for p, m, loss in grid:
        per_set: dict[str, list] = {}
        for r in old:
            n = len(r["rows"])  # the old defaults ran their planned epochs
            rule = StopRule(max(2, math.ceil(p * n)), math.ceil(m * n), loss_delta=loss)
            stop = next((k for k in range(1, n + 1) if stop_reason(r["rows"][:k], rule, n)), n)
            acc = max(float(row["val_acc"]) for row in r["rows"][:stop])
            saved = sum(float(row["seconds"]) for row in r["rows"][stop:])
            per_set.setdefault(r["set"], []).append((acc - r["val_accuracy"], (r["wall_s"] - saved) / r["wall_s"], stop, n))
        sets = {name: {"acc_change_pts": round(100 * float(np.mean([v[0] for v in vals])), 2), "wall_fraction": round(float(np.mean([v[1] for v in vals])), 3),
                       "stopped_at": [f"{v[2]}/{v[3]}" for v in vals]} for name, vals in per_set.items()}
        out.append({"patience_fraction": p, "min_fraction": round(m, 3), "loss_delta": loss, "worst_acc_change_pts": min(s["acc_change_pts"] for s in sets.values()),
                    "mean_wall_fraction": round(float(np.mean([s["wall_fraction"] for s in sets.values()])), 3), "sets": sets})
    return out


def replay_default(results: dict) -> list[dict]:
    """Today's default rule (``auto_rule``) replayed on every run that trained all its planned epochs
    (``old``, and ``full``: ``--patience 0``): the rule does not change training, only where it ends,
    so the epoch it would stop at, the accuracy kept (the best epoch up to there) less the full run's,
    and the wall time as a fraction of the full run's are exact."""
    out = []
    for r in results["runs"]:
        if r["run"] not in ("old", "full"):
            continue
        n = len(r["rows"])
        stop = next((k for k in range(1, n + 1) if stop_reason(r["rows"][:k], auto_rule(n), n)), n)
        full = max(float(row["val_acc"]) for row in r["rows"])
        kept = max(float(row["val_acc"]) for row in r["rows"][:stop])
        saved = sum(float(row["seconds"]) for row in r["rows"][stop:])
        out.append({"set": r["set"], "seed": r["seed"], "run": r["run"], "stopped_at": f"{stop}/{n}", "full_acc": round(100 * full, 2), "kept_acc": round(100 * kept, 2),
                    "change_pts": round(100 * (kept - full), 2), "wall_fraction": round((r["wall_s"] - saved) / r["wall_s"], 3)})
    return out


def report(results: dict) -> str:
    """A markdown table: per set, each run's accuracy per seed and mean, its mean wall time, and the new
    defaults against the old (wall ratio) and against the plain loop."""
    by: dict = {}
    for r in results["runs"]:
        by.setdefault(r["set"], {}).setdefault(r["run"], {})[r["seed"]] = r  # a later record of a seed replaces an earlier one
    lines = ["| set | old: acc per seed (mean), wall | new: acc per seed (mean), wall, epochs | plain: acc per seed (mean), wall | new - old | new / old wall | new - plain | new / plain wall |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, runs in by.items():
        cells, means = [], {}
        for run in ("old", "new", "plain"):
            seeds = runs.get(run, {})
            if not seeds:
                cells.append("-")
                continue
            accs = [100 * seeds[s]["val_accuracy"] for s in sorted(seeds)]
            walls = [seeds[s]["wall_s"] for s in sorted(seeds)]
            means[run] = (float(np.mean(accs)), float(np.mean(walls)))
            epochs = f", {'/'.join(str(seeds[s]['epochs']) for s in sorted(seeds))} epochs" if run != "plain" else ""
            cells.append(f"{' / '.join(f'{a:.2f}' for a in accs)} (**{np.mean(accs):.2f}**), {np.mean(walls):.1f} s{epochs}")
        pairs = [(means[a], means[b]) if a in means and b in means else None for a, b in (("new", "old"), ("new", "plain"))]
        figures = [(f"{x[0] - y[0]:+.2f} pts", f"{x[1] / y[1]:.3f}x") if pair else ("-", "-") for pair in pairs for x, y in [pair or ((0, 1), (0, 1))]]
        lines.append(f"| {name} | " + " | ".join(cells) + " | " + " | ".join(f for pair in figures for f in pair) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(IMAGE_SETS + VIDEO_SETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", default="old,new,plain")
    parser.add_argument("--old-tree", type=Path, help="checkout of the code before the change (git worktree add DIR COMMIT)")
    parser.add_argument("--new-tree", type=Path, help="checkout of the code to measure (default: this one)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/lstmimg-stopping"))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/stopping.json"))
    parser.add_argument("--new-args", default="", help="options added to the new runs (a variant to compare), e.g. '--schedule plateau'")
    parser.add_argument("--label", default="new", help="the new runs' name in the results (for a variant)")
    parser.add_argument("--replay", action="store_true", help="replay stopping rules on the old runs in --json instead of training")
    parser.add_argument("--report", action="store_true", help="print the results in --json as a markdown table")
    parser.add_argument("--replay-default", action="store_true", help="replay today's default rule on the runs in --json that trained every planned epoch")
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(args.json.read_text())))
        return
    if args.replay_default:
        table = replay_default(json.loads(args.json.read_text()))
        for row in table:
            print(f"{row['set']:<10} {row['run']:<4} seed {row['seed']}  stop {row['stopped_at']:>5}  full {row['full_acc']:6.2f}  kept {row['kept_acc']:6.2f}  "
                  f"{row['change_pts']:+.2f} pts  wall {row['wall_fraction']:.3f}")
        print(f"worst {min(r['change_pts'] for r in table):+.2f} pts; held-out sets' worst "
              f"{min((r['change_pts'] for r in table if r['set'] in HELD_OUT_SETS), default=float('nan')):+.2f} pts")
        args.json.with_name(args.json.stem + "_default_replay.json").write_text(json.dumps(table, indent=1) + "\n")
        return
    if args.replay:
        table = replay(json.loads(args.json.read_text()))
        for row in sorted(table, key=lambda r: (-r["worst_acc_change_pts"], r["mean_wall_fraction"])):
            print(f"patience {row['patience_fraction']:.1f}  min {row['min_fraction']:.2f}  loss {row['loss_delta']:.2f}  worst {row['worst_acc_change_pts']:+.2f} pts  "
                  f"wall {row['mean_wall_fraction']:.3f}  " + "  ".join(f"{k} {v['acc_change_pts']:+.1f}/{v['wall_fraction']:.2f}" for k, v in row["sets"].items()))
        args.json.with_name(args.json.stem + "_replay.json").write_text(json.dumps(table, indent=1) + "\n")
        return
    here = (args.new_tree or Path(__file__).parent.parent).resolve()
    runs = args.runs.split(",")
    if "old" in runs and not args.old_tree:
        raise SystemExit("--old-tree DIR is needed for the old runs")
    results = json.loads(args.json.read_text()) if args.json.exists() else {"machine": f"{os.cpu_count()} cores", "runs": []}
    for seed in args.seeds:
        for name in args.sets.split(","):
            data = make_set(name, args.work)
            kind = "video" if name in VIDEO_SETS + HELD_OUT_VIDEO else "image"
            for run in runs:
                label = args.label if run == "new" else run
                out = args.work / "runs" / f"{name}-{label}-{seed}"
                if run == "plain":
                    record = plain_run(data, kind, seed, args.work)
                else:
                    if out.exists():
                        subprocess.run(["rm", "-rf", str(out)], check=True)
                    extra = args.new_args.split() if run == "new" else ["--patience", "0"] if run == "full" else []
                    record = train_run(data, out, seed, args.old_tree.resolve() if run == "old" else here, extra)
                results["runs"].append({"set": name, "kind": kind, "run": label, "seed": seed, **record})
                print(f"{name:<9} {label:<8} seed {seed}  acc {record['val_accuracy']:.4f}  wall {record['wall_s']:7.2f} s"
                      + (f"  epochs {record['epochs']} best {record['best_epoch']}" if run != "plain" else ""), flush=True)
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
