"""Sets unlike the bundled ones, as users have them, and what the defaults make of them.

    pip install '.[benchmarks]' && python benchmarks/user_sets.py [--only order|photos|variable|crops] [--json FILE]

- ``order``: 160 training videos (4 classes x 40) of 16 frames at 64x64 whose class lies only in the
  order of the frames (a bar turning clockwise or anticlockwise, a disc growing or shrinking; any
  single frame could belong to either class of its pair), 40 val videos. ``lstmimg train`` with its
  defaults, against a plain PyTorch CNN+LSTM written in a few dozen lines (batch 16, 25 epochs, whole
  16-frame sequences) on the same data.
- ``variable``: the same kind of videos, 10 to 30 frames each at 96x72 (the motion spread over the
  whole video whatever its length); the plain model reads 16 frames spread evenly over each video
  (for the 16-frame set that is every frame, as before).
- ``crops``: 840 crops (40x40 RGB) of 14 of scikit-image's real photographs, one class each, 672 train /
  168 val, val crops from parts of each photo never seen in training; ``lstmimg train`` with its
  defaults against a plain CNN+BiLSTM (batch 32, 30 epochs, its best epoch).
- ``photos``: 200 JPEGs of 640x480 in 4 classes made from scikit-image's real photographs (random crops,
  zooms, flips and lighting of one photo per class), 40 of them val. ``lstmimg train`` with its
  defaults: accuracy, wall time and peak memory (max RSS).

Every run is a fresh process timed from outside (``/usr/bin/time``-like wall and max RSS).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PLAIN = r'''
import sys, time, cv2, numpy as np, torch
from pathlib import Path
from torch import nn
torch.manual_seed(0)
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
for epoch in range(25):
    net.train()
    for idx in torch.randperm(len(xt)).split(16):
        loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
        opt.zero_grad(); loss.backward(); opt.step()
net.eval()
with torch.no_grad():
    acc = (net(xv).argmax(1) == yv).float().mean().item()
print(f"PLAIN {acc:.4f} {time.time() - t0:.1f}")
'''


def digit_jpegs(folder: Path, count: int) -> None:
    """``count`` 28x28 JPEGs in class folders: the bundled digits in turn, each shifted by up to 2 pixels."""
    from PIL import Image

    from lstmimg.sample import sample_data_dir

    sources = sorted((sample_data_dir() / "digits").rglob("*.png"))
    rng = np.random.default_rng(0)
    for i in range(count):
        src = sources[i % len(sources)]
        img = np.asarray(Image.open(src).convert("L"))
        img = np.roll(img, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
        target = folder / src.parent.name / f"{i:05d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(target, quality=90)


def order_videos(root: Path, per_class: int, seed: int, frames: int | tuple[int, int] = 16, size: int | tuple[int, int] = 64) -> None:
    """Videos whose class is only in the order of their frames (see the module docstring); ``frames``
    a count or a (low, high) range, ``size`` a side or (H, W)."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = (size, size) if isinstance(size, int) else size
    yy, xx = np.mgrid[:h, :w] - np.array([h / 2, w / 2])[:, None, None]
    for name in ("anticlockwise", "clockwise", "grow", "shrink"):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            writer = cv2.VideoWriter(str(folder / f"{i:03d}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
            length = frames if isinstance(frames, int) else int(rng.integers(frames[0], frames[1] + 1))
            step = 16 / length  # the same motion over the whole video, whatever its length
            angle, radius = rng.uniform(0, np.pi), rng.uniform(6, 10) if name == "grow" else rng.uniform(22, 26)
            speed = rng.uniform(0.12, 0.2) * (1 if name == "clockwise" else -1)
            colour = rng.integers(120, 255, 3)
            for t in range(length):
                t = t * step
                img = rng.integers(0, 50, (h, w, 3)).astype(np.uint8)
                if name in ("clockwise", "anticlockwise"):
                    a = angle + speed * t
                    mask = np.abs(xx * np.sin(a) - yy * np.cos(a)) < 2.5
                    mask &= xx**2 + yy**2 < 26**2
                else:
                    r = radius + (1.0 if name == "grow" else -1.0) * t
                    mask = xx**2 + yy**2 < r**2
                img[mask] = colour
                writer.write(img)
            writer.release()


def event_videos(root: Path, per_class: int, seed: int, frames: tuple[int, int] = (30, 90), size: tuple[int, int] = (48, 64)) -> None:
    """Videos of two events in turn, a disc then a bar (``disc_then_bar``) or the other way round: any
    stretch of either event alone could be in either class, only the order of the two tells them apart.
    The change comes between 40% and 60% of the video, whose length is drawn from ``frames``."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    for name in ("bar_then_disc", "disc_then_bar"):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            length = int(rng.integers(frames[0], frames[1] + 1))
            change = int(length * rng.uniform(0.4, 0.6))
            colour = rng.integers(120, 255, 3)
            writer = cv2.VideoWriter(str(folder / f"{i:03d}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
            for t in range(length):
                img = rng.integers(0, 50, (h, w, 3)).astype(np.uint8)
                cy, cx = h / 2 + rng.uniform(-3, 3), w / 2 + rng.uniform(-3, 3)
                disc = (t < change) == (name == "disc_then_bar")
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 < 12**2 if disc else (np.abs(yy - cy) < 3) & (np.abs(xx - cx) < 20)
                img[mask] = colour
                writer.write(img)
            writer.release()


def photo_folder(root: Path, per_class: int, seed: int) -> None:
    """640x480 JPEGs: crops, zooms, flips and lighting of one real photograph per class."""
    import skimage.data
    from PIL import Image, ImageEnhance

    rng = np.random.default_rng(seed)
    for name in ("astronaut", "coffee", "rocket", "chelsea"):
        photo = Image.fromarray(getattr(skimage.data, name)())
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            w, h = photo.size
            scale = rng.uniform(0.55, 0.95)
            cw, ch = int(w * scale), int(h * scale)
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            img = photo.crop((x0, y0, x0 + cw, y0 + ch)).resize((640, 480))
            if rng.random() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.6, 1.4))
            img.save(folder / f"IMG_{i:04d}.jpg", quality=90)


PHOTOS = ("astronaut", "brick", "camera", "cat", "coffee", "coins", "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket")


def photo_crops(root: Path, per_class: int, val_per_class: int, seed: int, side: int = 40, photos: tuple[str, ...] = PHOTOS) -> None:
    """Crops of 14 of scikit-image's real photographs (or of ``photos``), one class each, at ``side`` x
    ``side``: train crops from the left 70% of each photo, val crops from the rest, so val shows parts
    never trained on."""
    import skimage.data
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name in photos:
        photo = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        w, h = photo.size
        for split, count, (lo, hi) in (("train", per_class, (0.0, 0.7)), ("val", val_per_class, (0.7, 1.0))):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                size = int(rng.uniform(0.15, 0.3) * min(w, h))
                x0 = int(rng.uniform(lo * w, max(lo * w, hi * w - size)))
                y0 = int(rng.integers(0, h - size + 1))
                photo.crop((x0, y0, x0 + size, y0 + size)).resize((side, side)).save(folder / f"{i:03d}.png")


TILT_PHOTOS = ("page", "text", "brick")  # straight lines, as in a scan: tilted crops of photos without them taught little (below)


def tilted_crops(root: Path, per_class: int, val_per_class: int, seed: int, side: int = 48, angles: tuple[int, ...] = (-10, 0, 10),
                 photos: tuple[str, ...] = TILT_PHOTOS) -> None:
    """Crops of scikit-image's real photographs turned by one of ``angles`` degrees, the angle the class
    (``left``, ``level``, ``right``): how a scan or a camera is tilted. Train crops from the left 70% of each
    photo, val from the rest. A set where the defaults are not the best choice: their augmentation turns
    images by up to 10 degrees, which moves a sample into the next class. Seed 0, 500 / 100 a class, val
    accuracy of `lstmimg train` against `--no-augment`: these photos at +-10 degrees 73.33% / 79.33%; at
    +-6 degrees 58.33% / 54.67%; six photos, half without straight lines, at +-10 degrees 60.00% / 63.67%."""
    import skimage.data
    from PIL import Image

    names = dict(zip(angles, ("left", "level", "right"))) if len(angles) == 3 else {a: f"deg{a:+d}" for a in angles}
    rng = np.random.default_rng(seed)
    pictures = [Image.fromarray(getattr(skimage.data, name)()).convert("RGB") for name in photos]
    for split, count, (lo, hi) in (("train", per_class, (0.0, 0.7)), ("val", val_per_class, (0.7, 1.0))):
        for angle, label in names.items():
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                photo = pictures[int(rng.integers(len(pictures)))]
                w, h = photo.size
                size = int(rng.uniform(0.25, 0.4) * min(w, h))
                box = int(size * 1.5)  # room to turn without bringing in corners
                x0 = int(rng.uniform(lo * w, max(lo * w, hi * w - box)))
                y0 = int(rng.integers(0, h - box + 1))
                turned = photo.crop((x0, y0, x0 + box, y0 + box)).rotate(angle, resample=Image.Resampling.BICUBIC)
                m = (box - size) // 2
                turned.crop((m, m, m + size, m + size)).resize((side, side), Image.Resampling.BILINEAR).save(folder / f"{i:03d}.png")


PLAIN_BILSTM = r'''
import sys, time, numpy as np, torch
from pathlib import Path
from PIL import Image
from torch import nn
torch.manual_seed(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
SIZE = tuple(int(s) for s in sys.argv[3].split("x")) if len(sys.argv) > 3 else None
def load(split):
    root = Path(sys.argv[1]) / split
    classes = sorted(p.name for p in root.iterdir())
    xs, ys = [], []
    for c, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            img = Image.open(f).convert("RGB")
            xs.append(np.asarray(img.resize(SIZE[::-1]) if SIZE else img)); ys.append(c)  # SIZE (H, W): squashed to it
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
best = 0.0
for epoch in range(30):
    net.train()
    for idx in torch.randperm(len(xt)).split(32):
        loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
        opt.zero_grad(); loss.backward(); opt.step()
    net.eval()
    with torch.no_grad():
        best = max(best, (net(xv).argmax(1) == yv).float().mean().item())
print(f"PLAIN {best:.4f} {time.time() - t0:.1f}")
'''


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, max RSS (GB) of the child, and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return wall, max(peak, before) / 1024**2, done.stdout + done.stderr


def lstmimg_train(data: Path, out: Path, *extra: str) -> dict:
    wall, rss, text = timed([sys.executable, "-m", "lstmimg", "train", str(data), "--out", str(out), *extra])
    summary = json.loads((out / "summary.json").read_text())
    first = [line for line in text.splitlines() if line.startswith(("run ", "images are", "images come", "160 ", "200 ", "40 "))]
    return {"val_accuracy": summary["val_accuracy"], "wall_s": round(wall, 1), "max_rss_gb": round(rss, 2), "epochs": summary["epochs"],
            "img_size": summary["img_size"], "first_lines": first, "args": list(extra)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["order", "photos", "variable", "crops"])
    parser.add_argument("--json")
    parser.add_argument("--old-defaults", action="store_true", help="also train with the defaults before plan.py (batch 64, 15 epochs)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lstmimg-user-sets-"))
    results: dict = {}
    if args.only in (None, "order"):
        order_videos(work / "order" / "train", 40, seed=1)
        order_videos(work / "order" / "val", 10, seed=2)
        results["order"] = {"lstmimg": lstmimg_train(work / "order", work / "runs" / "order")}
        if args.old_defaults:
            results["order"]["lstmimg_old_defaults"] = lstmimg_train(work / "order", work / "runs" / "order_old", "--batch-size", "64", "--epochs", "15", "--clips-per-video", "1")
        script = work / "plain.py"
        script.write_text(PLAIN)
        wall, _, text = timed([sys.executable, str(script), str(work / "order")])
        acc = float(text.split("PLAIN")[1].split()[0])
        results["order"]["plain"] = {"val_accuracy": acc, "wall_s": round(wall, 1)}
    if args.only in (None, "photos"):
        photo_folder(work / "photos" / "train", 40, seed=3)
        photo_folder(work / "photos" / "val", 10, seed=4)
        results["photos"] = {"lstmimg": lstmimg_train(work / "photos", work / "runs" / "photos")}
    if args.only in (None, "variable"):
        order_videos(work / "variable" / "train", 40, seed=5, frames=(10, 30), size=(72, 96))
        order_videos(work / "variable" / "val", 10, seed=6, frames=(10, 30), size=(72, 96))
        results["variable"] = {"lstmimg": lstmimg_train(work / "variable", work / "runs" / "variable")}
        script = work / "plain.py"
        script.write_text(PLAIN)
        wall, _, text = timed([sys.executable, str(script), str(work / "variable")])
        results["variable"]["plain"] = {"val_accuracy": float(text.split("PLAIN")[1].split()[0]), "wall_s": round(wall, 1)}
    if args.only in (None, "crops"):
        photo_crops(work / "crops", 48, 12, seed=7)
        results["crops"] = {"lstmimg": lstmimg_train(work / "crops", work / "runs" / "crops")}
        script = work / "plain_bilstm.py"
        script.write_text(PLAIN_BILSTM)
        wall, _, text = timed([sys.executable, str(script), str(work / "crops")])
        results["crops"]["plain_bilstm_30_epochs_best"] = {"val_accuracy": float(text.split("PLAIN")[1].split()[0]), "wall_s": round(wall, 1)}
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"data and runs in {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
