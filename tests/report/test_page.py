"""The report page in a real browser (Debian's headless Chromium driven by Playwright; .ci/run installs
both), opened from disk as a person opens it: no request leaves it, nothing logs an error, its figures are
the report's, a confusion cell shows its samples and only them, filters change the gallery, and names
from the user's files are text, never markup."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    missing = pytest.fail if os.environ.get("LSTMIMG_REQUIRE_BROWSER") else pytest.skip  # .ci/run requires them: a page test never passes by skipping there
    try:
        import playwright.sync_api as playwright
    except ImportError:
        missing("the page tests need Playwright (pip install '.[test]')")
    if CHROMIUM is None:
        missing("the page tests need Chromium from the OS packages (apt-get install chromium; .ci/run does)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Page:
    """A report page opened from disk, with what it asked for and what it logged."""

    def __init__(self, browser, index: Path):
        self.requests: list[str] = []
        self.console: list[str] = []
        self.dialogs: list[str] = []
        self.page = browser.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(index.resolve().as_uri())
        self.page.wait_for_selector("body[data-ready='1']", timeout=10_000)

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector)

    def count(self) -> tuple[int, int]:
        """(matching, shown) of the gallery."""
        node = self.page.locator("#count")
        return int(node.get_attribute("data-matching")), int(node.get_attribute("data-shown"))

    def cards(self) -> list[dict]:
        return self.page.eval_on_selector_all("#gallery .card", "cs => cs.map(c => ({i: +c.dataset.i, true: c.dataset.true, pred: +c.dataset.pred}))")

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def open_page(browser):
    pages = []

    def opener(index: Path) -> Page:
        pages.append(Page(browser, index))
        return pages[-1]

    yield opener
    for page in pages:
        page.close()


import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from lstmimg.engine.review.report import ReportWriter, labelled_report  # noqa: E402

HOSTILE_FILE = "<img src=x onerror=alert(1)>.png"
HOSTILE_CLASS = '"><script>alert(2)</script>'


def hostile_report(root: Path, out: Path, n_per_class: int = 12) -> dict:
    """A labelled report over real PNG files in three class folders (one named like markup, one file
    named like markup), with seeded probabilities that are right about 70% of the time."""
    classes = ["cat", HOSTILE_CLASS, "dog"]
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for k, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(n_per_class):
            path = folder / (HOSTILE_FILE if (k, i) == (0, 0) else f"{i:02d}.png")
            Image.fromarray(rng.integers(0, 255, (24, 32, 3)).astype(np.uint8)).save(path)
            paths.append(path)
            labels.append(k)
    logits = torch.tensor(rng.normal(size=(len(paths), 3)), dtype=torch.float32)
    logits[torch.arange(len(paths)), torch.tensor(labels)] += 1.5
    probs = logits.softmax(1)
    pictures = lambda i: (np.asarray(Image.open(paths[i])), True)  # noqa: E731
    return labelled_report(out, "image", classes, paths, torch.tensor(labels), probs, pictures, "test report", "Scored: every file", skipped=[(str(root / "broken.png"), f"{root / 'broken.png'}: not an image Pillow can read")])


def data_of(out: Path) -> dict:
    return json.loads((out / "data.js").read_text(encoding="utf-8").split("=", 1)[1].rstrip().rstrip(";"))


def test_labelled_page_from_disk(tmp_path, open_page):
    written = hostile_report(tmp_path / "data", tmp_path / "report")
    data = data_of(tmp_path / "report")
    summary = data["summary"]
    page = open_page(tmp_path / "report" / "index.html")
    assert page.console == [] and page.dialogs == []
    assert all(url.startswith("file://") for url in page.requests) and len(page.requests) >= 4  # page, style, data, script, thumbnails
    assert page.text("#samples") == str(summary["samples"]) == str(written["samples"]) == "36"
    assert float(page.text("#accuracy")) == summary["accuracy"] and float(page.text("#ece")) == summary["ece"]
    assert page.count() == (36, 36)
    # every confusion cell shows exactly its samples
    cm = summary["confusion_matrix"]
    for t in range(3):
        for p in range(3):
            page.page.click(f"#confusion td.cell[data-true='{t}'][data-pred='{p}']")
            cards = page.cards()
            assert page.count() == (cm[t][p], cm[t][p])
            assert all(c["true"] == str(t) and c["pred"] == p for c in cards) and len(cards) == cm[t][p]
    # filters: wrong ones only, then a probability range; the count follows
    page.page.click("#reset")
    page.page.select_option("#filter-outcome", "wrong")
    wrong = sum(cm[t][p] for t in range(3) for p in range(3) if t != p)
    assert page.count()[0] == wrong and all(c["true"] != str(c["pred"]) for c in page.cards())
    page.page.fill("#prob-min", "0.6")
    high = sum(1 for row in data["samples"] if row[1] != row[2] and row[3] >= 0.6)
    assert page.count()[0] == high
    # the most confidently wrong come first
    page.page.click("#reset")
    probs = [data["samples"][c["i"]][3] for c in page.cards()[:wrong]]
    assert probs == sorted(probs, reverse=True)
    # hostile names: text on the page, nothing run
    assert HOSTILE_CLASS in page.text("#confusion") and HOSTILE_CLASS in page.text("#classes")
    page.page.select_option("#filter-true", "0")
    assert HOSTILE_FILE in page.text("#gallery")
    assert page.page.locator("#gallery img[src='x']").count() == 0 and page.page.locator("script").count() == 2
    assert "broken.png" in page.text("#skipped")
    # a sample's detail: every class's probability
    page.page.click("#gallery .card >> nth=0")
    assert page.page.is_visible("#detail") and page.page.locator("#detail .bar").count() == 3
    assert page.dialogs == [] and page.console == []
    rows = list(csv.DictReader((tmp_path / "report" / "predictions.csv").open(encoding="utf-8")))
    assert len(rows) == 36 and sum(r["correct"] == "0" for r in rows) == wrong


def test_unlabelled_page_lists_least_confident_first(tmp_path, open_page):
    writer = ReportWriter(tmp_path / "r", "image", ["a", "b"], "predict", labelled=False)
    rng = np.random.default_rng(1)
    for i in range(50):  # one at a time, a thumbnail file each
        p = float(rng.uniform(0.5, 1))
        writer.add(f"/data/{i}.png", torch.tensor([p, 1 - p]), pixels=rng.integers(0, 255, (3, 8, 8)).astype(np.uint8))
    pixels = torch.from_numpy(rng.integers(0, 255, (200, 3, 96, 128)).astype(np.uint8))
    p = torch.from_numpy(rng.uniform(0.5, 1, 200)).float()
    for start in range(50, 250, 64):  # batches, their thumbnails in one sheet each: more than a page of cards in all
        n = min(64, 250 - start)
        writer.add_batch([f"/data/{i}.png" for i in range(start, start + n)], torch.stack([p[start - 50 : start - 50 + n], 1 - p[start - 50 : start - 50 + n]], 1), pixels[start - 50 : start - 50 + n])
    writer.skip("/data/bad.png", "/data/bad.png: not an image Pillow can read")
    writer.close()
    sheet, x, y, w, h, *_ = data_of(tmp_path / "r")["samples"][60][5]  # sample 60: the 11th of the first sheet
    assert (w, h) == (64, 48) and (x, y) == (2 * 64, 1 * 48)
    tile = np.asarray(Image.open(tmp_path / "r" / sheet).convert("RGB"), dtype=np.float32)[y : y + h, x : x + w]
    expected = np.asarray(Image.fromarray(pixels[10].permute(1, 2, 0).numpy()).resize((64, 48), Image.Resampling.BILINEAR), dtype=np.float32)
    assert np.abs(tile - expected).mean() < 40  # the same picture, though JPEG and the filter blur noise differently
    page = open_page(tmp_path / "r" / "index.html")
    assert page.console == [] and page.count() == (250, 120)
    assert page.page.locator("#gallery .card img.thumb").count() + page.page.locator("#gallery .card div.sheet").count() == 120
    page.page.wait_for_function("[...document.querySelectorAll('#gallery div.sheet')].some(d => d.style.backgroundImage.includes('thumbs/s'))")
    probs = [data_of(tmp_path / "r")["samples"][c["i"]][3] for c in page.cards()]
    assert probs == sorted(probs)
    page.page.click("#more")
    assert page.count() == (250, 240)
    assert page.text("#skipped-count") == "1" and page.page.is_hidden("#confusion-section")
    page.page.click("#classes td.link >> nth=0")  # the most predicted label first
    assert page.count()[0] == max(data_of(tmp_path / "r")["summary"]["predicted_counts"])


def test_an_existing_report_is_refused_unless_overwrite(tmp_path):
    from lstmimg.errors import LstmimgError

    ReportWriter(tmp_path / "r", "image", ["a", "b"], "t", labelled=False).close()
    with pytest.raises(LstmimgError, match="index.html: exists"):
        ReportWriter(tmp_path / "r", "image", ["a", "b"], "t", labelled=False)
    ReportWriter(tmp_path / "r", "image", ["a", "b"], "t", labelled=False, overwrite=True).close()


def test_video_timeline_page(tmp_path, open_page):
    """video --report: the band has a rect per window, the segments table a row per segment, keyframes at
    the label changes, and a click on the band shows a frame of that time."""
    from lstmimg.engine.infer.timeline import classify_sources
    from lstmimg.engine.review.report import add_timeline
    from lstmimg.sample import sample_data_dir

    clip = sample_data_dir() / "clips" / "val" / "up" / "000.mp4"
    (result,) = classify_sources([clip], window="3")
    writer = ReportWriter(tmp_path / "v", "video", ["down", "left", "right", "up"], "video", labelled=False)
    add_timeline(writer, result)
    writer.close()
    page = open_page(tmp_path / "v" / "index.html")
    assert page.console == [] and all(url.startswith("file://") for url in page.requests)
    assert page.page.locator(".timeline rect.window").count() == len(result["windows"]) > 1
    assert page.page.locator(".timeline table.segments tr").count() == len(result["segments"]) + 1
    assert page.page.locator(".keyframes figure").count() == len(result["segments"])
    box = page.page.locator(".timeline svg").bounding_box()
    page.page.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + 10)
    assert page.page.is_visible("#detail") and page.page.locator("#detail img.big").count() == 1
    # the frame's file is there: it loads (waited for: under load the image may not have decoded when the click returns)
    page.page.wait_for_function("() => { const img = document.querySelector('#detail img.big'); return img.complete && img.naturalWidth > 0 }", timeout=10_000)


def test_video_samples_of_predict_and_eval_have_their_timeline_in_the_detail(tmp_path, open_page):
    """Issue 31: video samples in eval/predict reports had no timeline. Each one's clips (read anyway) are
    the windows of its band; a clip whose label differs starts a segment with its keyframe."""
    from conftest import VIDEO_MODEL, run_cli

    from lstmimg.engine.review.report import clip_timeline
    from lstmimg.sample import sample_data_dir

    clips = sorted((sample_data_dir() / "clips" / "val" / "up").iterdir())[:4]
    result = run_cli("predict", *clips, "--model", VIDEO_MODEL, "--report", tmp_path / "p")
    assert result.exit_code == 0, result.output
    details = data_of(tmp_path / "p")["details"]
    assert sorted(map(int, details)) == [0, 1, 2, 3]
    for d in details.values():
        tl = d["timeline"]
        assert tl["unit"] == "s" and tl["fps"] > 0 and len(tl["windows"]) >= 1 and (tmp_path / "p" / tl["frames"]["0"]).is_file()
    labelled = tmp_path / "clips"
    for folder in sorted((sample_data_dir() / "clips" / "val").iterdir()):
        (labelled / folder.name).mkdir(parents=True)
        for clip in sorted(folder.iterdir())[:2]:
            shutil.copy(clip, labelled / folder.name / clip.name)
    result = run_cli("eval", labelled, "--model", VIDEO_MODEL, "--out", tmp_path / "e")
    assert result.exit_code == 0, result.output
    details = data_of(tmp_path / "e")["details"]
    assert len(details) == 8 and all(d["timeline"]["fps"] > 0 and (tmp_path / "e" / d["timeline"]["frames"]["0"]).is_file() for d in details.values())
    # three clips of one video, the last one said otherwise: two segments, two keyframes
    writer = ReportWriter(tmp_path / "v", "video", ["down", "up"], "predict", labelled=False)
    rng = np.random.default_rng(0)
    i = writer.add("/videos/long.mp4", torch.tensor([0.3, 0.7]), pixels=rng.integers(0, 255, (8, 3, 16, 16)).astype(np.uint8))
    clip_timeline(writer, i, torch.tensor([[0.1, 0.9], [0.2, 0.8], [0.7, 0.3]]), 300, 30.0, 8, 2, torch.from_numpy(rng.integers(0, 255, (3, 3, 16, 16)).astype(np.uint8)))
    writer.close()
    tl = data_of(tmp_path / "v")["details"]["0"]["timeline"]
    assert [w[:3] for w in tl["windows"]] == [[0.0, 0.5, 1], [4.733, 5.233, 1], [9.5, 10.0, 0]]  # starts 0, 142, 285 of 300 frames at 30 fps
    assert tl["segments"] == [[0.0, 5.233, 1, 0.85], [9.5, 10.0, 0, 0.7]] and tl["keyframes"] == [0, 2]
    page = open_page(tmp_path / "v" / "index.html")
    page.page.click("#gallery .card >> nth=0")
    detail = page.page.locator("#detail")
    assert detail.locator(".timeline rect.window").count() == 3 and detail.locator(".timeline table.segments tr").count() == 3
    assert detail.locator(".keyframes figure").count() == 2
    box = detail.locator(".timeline svg").bounding_box()
    page.page.mouse.click(box["x"] + box["width"] * 0.97, box["y"] + 10)  # the last clip
    assert "00:09.5-00:10.0" in page.text("#detail-body h3")
    assert page.page.evaluate("document.querySelector('#detail img.big').naturalWidth") > 0
    assert page.console == [] and all(url.startswith("file://") for url in page.requests)


def test_the_docs_screenshots_script_runs(tmp_path, browser):
    """docs/report.md's pictures come from scripts/report_screenshots.py: it must keep working."""
    import importlib.util

    from PIL import Image

    spec = importlib.util.spec_from_file_location("shots", Path(__file__).resolve().parents[2] / "scripts" / "report_screenshots.py")
    shots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shots)
    made = shots.main(tmp_path / "images", browser)
    assert [p.name for p in made] == ["report-top.png", "report-cell.png", "report-detail.png"]
    assert all(Image.open(p).size[0] > 300 for p in made)


def test_the_check_page_shows_each_group_of_copies_and_the_likely_label_errors(tmp_path, open_page):
    """Issue 32: pictures of each group (copies side by side, leaks marked) and of the suspected label
    errors with their given and suggested labels, names as text."""
    from conftest import run_cli, write_class_folders

    from lstmimg.engine.health.check_page import check_page

    data = tmp_path / "data"
    write_class_folders(data / "train", 8, seed=4)
    write_class_folders(data / "val", 2, seed=5)
    train = sorted((data / "train" / "vertical").iterdir())
    shutil.copy(train[0], data / "train" / "vertical" / "zz_copy.png")  # a copy within train
    shutil.copy(sorted((data / "train" / "horizontal").iterdir())[0], data / "val" / "horizontal" / HOSTILE_FILE)  # a leak
    result = run_cli("check", data, "--out", tmp_path / "c", "--json")
    assert result.exit_code == 0, result.output
    findings = json.loads(result.stdout)
    assert findings["page"] == str(tmp_path / "c" / "index.html") and not (tmp_path / "c" / "predictions.csv").exists()
    page = open_page(tmp_path / "c" / "index.html")
    assert page.console == [] and page.dialogs == [] and all(url.startswith("file://") for url in page.requests)
    assert page.page.locator("#groups .group").count() == len(findings["duplicates"]) >= 2
    assert page.page.locator("#groups .group.leak").count() == len(findings["leaks"]) == 1
    assert HOSTILE_FILE in page.text("#groups .group.leak") and page.page.locator("#groups img").count() == sum(len(d["members"]) for d in findings["duplicates"])
    assert page.page.evaluate("[...document.querySelectorAll('#groups img')].every(i => i.complete && i.naturalWidth > 0)")
    assert page.page.is_hidden("#gallery-section") and page.page.is_hidden("#classes-section")  # without --labels the groups are the page
    # likely label errors: a gallery whose true label is the folder's and predicted the suggestion
    classes = [row["class"] for row in findings["classes"]["per_class"]]  # diagonal, horizontal, vertical
    issues = []
    for k, name in enumerate(classes):
        for i, path in enumerate(sorted((data / "train" / name).iterdir())[: k + 1]):  # 1, 2 and 3 suspects a class
            suggested = (k + 1) % 3
            probs = [0.05] * 3
            probs[suggested], probs[k] = 0.8, 0.15
            issues.append({"path": str(path), "given": name, "suggested": classes[suggested], "score": 0.85 - i / 10, "probs": probs})
    check_page({**findings, "label_issues": {"issues": issues}}, tmp_path / "l")
    page = open_page(tmp_path / "l" / "index.html")
    assert page.console == [] and page.count()[0] == 6 and page.page.locator("#accuracy").count() == 0  # no accuracy among suspects
    page.page.click("#confusion td[data-true='1'][data-pred='2']")  # given horizontal, suggested vertical
    assert page.count()[0] == 2 and {(c["true"], c["pred"]) for c in page.cards()} == {("1", 2)}
