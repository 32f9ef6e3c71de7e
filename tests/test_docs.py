"""The documentation's commands run as written, so it cannot drift from the code.

Every `lstmimg ...` line in a ```bash block, and every `$ lstmimg ...` line in a ```text block, of the
README and docs/ runs in a sandbox folder that holds what the docs name (the bundled sample data, a
`photos/` and a `clips/` folder, the bad inputs of the reliability table), one document after another
in its own folder, in the order written; training is shortened to one epoch, `bench` runs `--quick`.
A block right after `<!-- not run: REASON -->` is skipped (it needs GPUs or several machines). Each
row of the reliability table runs too, and must print exactly the line the table shows, with its exit
code.
"""

from __future__ import annotations

import os
import re
import shlex
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import moving_square, run_cli, write_class_folders, write_clip
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"(<!-- not run: [^>]+ -->\s*\n)?```(\w*)[^\n]*\n(.*?)```", re.S)


def commands(doc: Path) -> list[str]:
    """The commands of ``doc`` the test runs, in order."""
    found = []
    for skip, lang, body in FENCE.findall(doc.read_text(encoding="utf-8")):
        if skip:
            continue
        for line in body.splitlines():
            if lang == "bash" and line.startswith("lstmimg "):
                found.append(line.split("  #")[0].strip())
            elif lang == "text" and line.startswith("$ lstmimg "):
                found.append(line[2:].strip())
    return found


def shortened(args: list[str]) -> list[str]:
    if args[0] == "train" and "--resume" not in args:
        if "--epochs" in args:
            args[args.index("--epochs") + 1] = "1"
        else:
            args += ["--epochs", "1"]
    if args[0] == "bench" and "--quick" not in args:
        args.append("--quick")
    return args


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` 1-bit pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def make_sandbox(root: Path) -> Path:
    """A folder holding everything the docs' commands name."""
    from lstmimg.runs import BUNDLED_MODELS
    from lstmimg.sample import sample_data_dir

    root.mkdir(parents=True)
    (root / "sample_data").symlink_to(sample_data_dir())
    (root / "lstmimg").mkdir()
    (root / "lstmimg" / "assets").symlink_to(BUNDLED_MODELS["image"].parent)
    photos = root / "photos"
    write_class_folders(photos / "train", 16, seed=1)
    write_class_folders(photos / "val", 6, seed=2)
    for image in photos.rglob("*.png"):  # 24x24, so --patch 4 divides it
        Image.open(image).resize((24, 24)).save(image)
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 4)):
        for name, direction in (("left", -1), ("right", 1)):
            (root / "clips" / split / name).mkdir(parents=True)
            for i in range(count):
                write_clip(root / "clips" / split / name / f"{i:02d}.avi", moving_square(direction, 6, rng, size=20))
    # the bad inputs of docs/reliability.md
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (28, 28)).astype(np.uint8)).save(root / "ok.png")
    (root / "text.png").write_bytes(b"just some text, not a picture")
    (root / "results.jsonl").write_text('{"path": "ok.png", "label": "3"}\n')
    (root / "empty.png").write_bytes(b"")
    (root / "cut.png").write_bytes((root / "ok.png").read_bytes()[:70])
    (root / "bomb.png").write_bytes(png_claiming(50000, 50000))
    (root / "random.pt").write_bytes(np.random.default_rng(1).bytes(3000))
    torch.save({"model": "not ours"}, root / "other.pt")
    (root / "evil.pt").write_bytes(b"\x80\x02cposix\nsystem\nq\x00X\x05\x00\x00\x00touchq\x01\x85q\x02Rq\x03.")
    (root / "noclasses").mkdir()
    write_class_folders(root / "oneclass", 3, seed=0, classes=("cats",))
    write_class_folders(root / "emptyclass", 3, seed=0, classes=("a",))
    (root / "emptyclass" / "b").mkdir()
    (root / "v_empty.mp4").write_bytes(b"")
    (root / "v_text.mp4").write_bytes(b"not a video at all " * 40)
    full = write_clip(root / "v_full.avi", sum((moving_square(1, 6, np.random.default_rng(i)) for i in range(10)), []))
    (root / "v_cut.avi").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    (root / "v_header.avi").write_bytes(full.read_bytes()[:4096])
    write_clip(root / "clip.mp4", moving_square(1, 6, rng, size=20))
    from lstmimg import ModelConfig, TrainConfig, fit

    fit(photos, ModelConfig(hidden=8, cnn_channels=(4, 8)), TrainConfig(epochs=1), out=root / "done")  # a finished run
    return root


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    return make_sandbox(tmp_path_factory.mktemp("docs") / "sandbox")


def in_folder(folder: Path, args: list[str]):
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return run_cli(*args)
    finally:
        os.chdir(cwd)


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_documented_command_runs(doc, sandbox, tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    for entry in sandbox.iterdir():
        (folder / entry.name).symlink_to(entry)
    for command in commands(doc):
        result = in_folder(folder, shortened(shlex.split(command)[1:]))
        assert result.exit_code == 0, f"{doc.name}: `{command}` exited {result.exit_code}:\n{result.output[-2000:]}"


def table_rows() -> list[tuple[str, int, str]]:
    """``(command, exit code, stderr line)`` of each row of docs/reliability.md's bad-input table."""
    rows = []
    for line in (REPO / "docs" / "reliability.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 4 and cells[2].isdigit():
            rows.append((cells[1].strip("`").strip(), int(cells[2]), re.sub(r"^`+ ?| ?`+$", "", cells[3])))
    return rows


def test_the_reliability_table_is_what_lstmimg_prints(sandbox, tmp_path):
    rows = table_rows()
    assert len(rows) >= 30
    for command, code, expected in rows:
        folder = tmp_path / f"row{rows.index((command, code, expected))}"
        folder.mkdir()
        for entry in sandbox.iterdir():
            (folder / entry.name).symlink_to(entry)
        result = in_folder(folder, shlex.split(command)[1:])
        lines = [line for line in result.stderr.splitlines() if line.startswith(("error:", "warning:", "interrupted:")) or "already finished" in line]
        assert result.exit_code == code and lines[:1] == [expected], f"`{command}`: exit {result.exit_code}, printed {lines}"
        assert "Traceback" not in result.output
