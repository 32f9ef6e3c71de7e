"""Screenshots of the review page for docs/report.md, made from a real report so they follow the page.

    python scripts/report_screenshots.py [OUT_DIR]   (default docs/images; tests/report/test_page.py runs it into a temporary folder)

The bundled digits model is evaluated on 200 of the bundled val digits (20 a class) with `evaluate(...,
out=...)`; headless Chromium (Debian's, through Playwright) opens the page from disk and takes: the top of
the page (figures, per-class table, confusion matrix), the gallery after a click on the largest
off-diagonal confusion cell, and a sample's detail.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path


def main(out: Path, browser=None) -> list[Path]:
    """Write the screenshots into ``out``; ``browser``: a Playwright browser already started (else one is)."""
    from lstmimg import evaluate
    from lstmimg.sample import sample_data_dir

    work = Path(tempfile.mkdtemp(prefix="lstmimg-shots-"))
    try:
        for folder in sorted((sample_data_dir() / "digits" / "val").iterdir()):
            (work / "digits" / folder.name).mkdir(parents=True)
            for f in sorted(folder.glob("*.png"))[:20]:
                shutil.copy(f, work / "digits" / folder.name / f.name)
        report = evaluate(work / "digits", out=work / "report", device="cpu")
        cm = report["confusion_matrix"]
        t, p = max(((t, p) for t in range(len(cm)) for p in range(len(cm)) if t != p), key=lambda tp: cm[tp[0]][tp[1]])
        out.mkdir(parents=True, exist_ok=True)
        shots = [out / "report-top.png", out / "report-cell.png", out / "report-detail.png"]
        if browser is None:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                started = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
                shoot(started, work / "report" / "index.html", (t, p), shots)
                started.close()
        else:
            shoot(browser, work / "report" / "index.html", (t, p), shots)
        return shots
    finally:
        shutil.rmtree(work, ignore_errors=True)


def shoot(browser, index: Path, cell: tuple[int, int], shots: list[Path]) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(index.resolve().as_uri())
    page.wait_for_selector("body[data-ready='1']")
    page.screenshot(path=str(shots[0]))
    page.click(f"#confusion td.cell[data-true='{cell[0]}'][data-pred='{cell[1]}']")
    page.locator("#gallery-section").screenshot(path=str(shots[1]))
    page.click("#gallery .card >> nth=0")
    page.locator("#detail .panel").screenshot(path=str(shots[2]))
    page.close()


if __name__ == "__main__":
    for shot in main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "docs" / "images"):
        print(shot)
