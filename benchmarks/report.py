"""The review page's bars (issue 31): its figures against report.json in a real browser, what it costs.

    pip install '.[test]' && python benchmarks/report.py [--images 20000] [--pairs 2] [--json FILE]

- ``eval``: ``lstmimg eval --out`` over the bundled digits val (1,000 images) and over a folder of 160
  bundled clips (40 of each class, scored by the bundled video model); each page opened from disk in
  headless Chromium: accuracy and per-class support on the page against report.json, and every confusion
  cell clicked, the gallery's count and cards against the cell; console errors and any request that is not
  a file:// URL.
- ``predict``: ``--images`` JPEGs of 64x64 (bundled digits, recoloured and enlarged), ``predict --jsonl``
  alone and with ``--report`` side by side, ``--pairs`` times in alternation, median wall times and their
  ratio; the report folder's size; the page's first render (navigation to the page's script done) in
  headless Chromium, median of 3 loads.
- ``train``: the bundled ``lstmimg train`` with and without ``--no-report``, ``--pairs`` times in
  alternation: median wall times and the report's share.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHROMIUM = shutil.which("chromium")


def run(*args: str) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lstmimg", *args], capture_output=True, text=True)
    if done.returncode not in (0,):
        raise SystemExit(f"lstmimg {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def check_page(browser, out: Path) -> dict:
    """Open ``out/index.html`` and check it against ``out/report.json``, every confusion cell clicked."""
    report = json.loads((out / "report.json").read_text())
    page, requests, console = browser.new_page(), [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(str(e)))
    page.goto((out / "index.html").resolve().as_uri())
    page.wait_for_selector("body[data-ready='1']")
    accuracy_ok = float(page.inner_text("#accuracy")) == report["accuracy"]
    supports = page.eval_on_selector_all("#classes tr[data-k]", "rows => rows.map(r => [+r.dataset.k, +r.children[4].textContent])")
    support_ok = all(report["per_class"][k]["support"] == n for k, n in supports) and len(supports) == len(report["classes"])
    cm, wrong_cells = report["confusion_matrix"], []
    for t, row in enumerate(cm):
        for p, n in enumerate(row):
            page.click(f"#confusion td.cell[data-true='{t}'][data-pred='{p}']")
            matching = int(page.get_attribute("#count", "data-matching"))
            cards = page.eval_on_selector_all("#gallery .card", "cs => cs.map(c => [+c.dataset.true, +c.dataset.pred])")
            if matching != n or any(c != [t, p] for c in cards) or len(cards) != min(n, 120):
                wrong_cells.append([t, p, n, matching])
    page.close()
    return {"samples": report["samples"], "accuracy_matches": accuracy_ok, "supports_match": support_ok, "cells_checked": sum(len(r) for r in cm),
            "cells_wrong": wrong_cells, "console_errors": console, "requests": len(requests), "non_file_requests": [u for u in requests if not u.startswith("file://")]}


def first_render(browser, index: Path, loads: int = 3) -> float:
    times = []
    for _ in range(loads):
        page = browser.new_page()
        t0 = time.perf_counter()
        page.goto(index.resolve().as_uri())
        page.wait_for_selector("body[data-ready='1']")
        times.append(time.perf_counter() - t0)
        page.close()
    return round(statistics.median(times), 3)


def jpegs(root: Path, n: int) -> None:
    """``n`` 64x64 RGB JPEGs from the bundled digits, tinted and enlarged, in one folder."""
    from PIL import Image

    from lstmimg.sample import sample_data_dir

    digits = sorted((sample_data_dir() / "digits").rglob("*.png"))
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for i in range(n):
        grey = np.asarray(Image.open(digits[i % len(digits)]).resize((64, 64)), dtype=np.float32) / 255
        tint = rng.uniform(0.4, 1.0, 3)
        Image.fromarray((grey[..., None] * tint * 255).astype(np.uint8)).save(root / f"{i:06d}.jpg", quality=90)


def main() -> None:
    from playwright.sync_api import sync_playwright

    from lstmimg.sample import sample_data_dir

    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--only", choices=["eval", "predict", "train"])
    parser.add_argument("--json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lstmimg-report-"))
    results: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        if args.only in (None, "eval"):
            run("eval", str(sample_data_dir() / "digits"), "--out", str(work / "digits-eval"))
            results["eval_digits"] = check_page(browser, work / "digits-eval")
            clips = work / "clips160"
            for folder in sorted((sample_data_dir() / "clips" / "train").iterdir()):  # 40 bundled clips of each of the 4 classes
                (clips / folder.name).mkdir(parents=True)
                for f in sorted(folder.glob("*.mp4"))[:40]:
                    shutil.copy(f, clips / folder.name / f.name)
            run("eval", str(clips), "--out", str(work / "clips-eval"))
            results["eval_clips"] = check_page(browser, work / "clips-eval")
            print(json.dumps(results), flush=True)  # each part as it ends
        if args.only in (None, "predict"):
            folder = work / "jpegs"
            jpegs(folder, args.images)
            plain, with_report = [], []
            for i in range(args.pairs):
                plain.append(run("predict", str(folder), "--jsonl", str(work / f"plain{i}.jsonl")))
                with_report.append(run("predict", str(folder), "--jsonl", str(work / f"rep{i}.jsonl"), "--report", str(work / f"rep{i}")))
            size = sum(f.stat().st_size for f in (work / "rep0").rglob("*") if f.is_file())
            results["predict"] = {"images": args.images, "plain_s": [round(t, 2) for t in plain], "report_s": [round(t, 2) for t in with_report],
                                  "ratio_of_medians": round(statistics.median(with_report) / statistics.median(plain), 3), "report_bytes": size,
                                  "report_mb": round(size / 1e6, 1), "first_render_s": first_render(browser, work / "rep0" / "index.html")}
            print(json.dumps(results), flush=True)
        browser.close()
    if args.only in (None, "train"):
        on, off = [], []
        for i in range(args.pairs):
            off.append(run("train", "--out", str(work / f"off{i}"), "--no-report"))
            on.append(run("train", "--out", str(work / f"on{i}")))
        results["train"] = {"with_report_s": [round(t, 2) for t in on], "no_report_s": [round(t, 2) for t in off],
                            "added": round(statistics.median(on) / statistics.median(off) - 1, 4)}
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
