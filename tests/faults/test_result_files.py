"""Result files under faults: names with pattern letters, --overwrite that fails half-way, a torn CSV
header, an input named twice (issue 29, items 1, 2, 6, 17)."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import IMAGE_MODEL, assert_one_line_error, run_cli, write_class_folders

from lstmimg.engine.infer import outputs as O
from lstmimg.engine.infer.collection import classify_to_files
from lstmimg.engine.infer.loading import load_checkpoint

pytestmark = pytest.mark.timeout(90)  # a hang is a failure


@pytest.fixture(scope="module")
def digits():
    return load_checkpoint(IMAGE_MODEL)


@pytest.fixture
def images(tmp_path):
    return sorted((write_class_folders(tmp_path / "imgs", 4, seed=5, classes=("a", "b"))).rglob("*.png"))


@pytest.mark.parametrize("name", ["res[1].jsonl", "a*b?.jsonl", "[x].jsonl"])
def test_parts_of_a_file_whose_name_holds_pattern_letters_are_found_merged_and_refused(tmp_path, name):
    """Item 1: the parts are matched by name, not as a glob pattern (``[1]`` used to hide them)."""
    path = tmp_path / name
    for rank in range(2):
        part = O.ResultFile(O.part_path(path, rank, 2), "jsonl", "image")
        part.write([{"path": f"p{rank}", "label": "a", "prob": 1.0, "top": []}])
        part.close()
    (tmp_path / "res1.jsonl.part000-of-002").write_text("not a part of it\n")  # what the pattern used to match instead
    assert [p.name for p in O.parts_of(path)] == [f".{name}.part000-of-002", f".{name}.part001-of-002"]
    with pytest.raises(Exception, match="parts of an unfinished sharded run"):
        O.check_output(path, "--jsonl", resume=False, overwrite=False)
    assert O.done_paths(path, "jsonl") == {"p0", "p1"}
    assert O.merge_parts(path, "jsonl", "image", ["p0", "p1"]) == 2 and O.parts_of(path) == []
    assert [json.loads(line)["path"] for line in path.read_text().splitlines()] == ["p0", "p1"]


def test_overwrite_that_fails_half_way_keeps_the_old_results(tmp_path, images, digits):
    """Item 2: --overwrite replaces the file only once the new results are complete."""
    out = tmp_path / "old.jsonl"
    old = "".join(json.dumps({"path": f"old{i}", "label": "x", "prob": 1.0, "top": []}) + "\n" for i in range(1000))
    out.write_text(old)

    def fail(batch):
        raise RuntimeError("the run dies after its first batch")

    with pytest.raises(RuntimeError):
        classify_to_files(images, digits, [(out, "jsonl")], overwrite=True, batch_size=2, workers=0, device="cpu", on_batch=fail)
    assert out.read_text() == old
    classify_to_files(images, digits, [(out, "jsonl")], overwrite=True, batch_size=2, workers=0, device="cpu")
    assert sorted(json.loads(line)["path"] for line in out.read_text().splitlines()) == sorted(map(str, images))
    assert O.parts_of(out) == []


def test_sharded_overwrite_with_a_bad_model_keeps_the_old_results(tmp_path, images):
    """Item 2 through the CLI: `--devices 2 --overwrite --model nope.pt` used to delete the file first."""
    out = tmp_path / "keep.jsonl"
    out.write_text('{"path": "a", "label": "x", "prob": 1.0, "top": []}\n')
    result = run_cli("predict", images[0].parent, "--jsonl", out, "--devices", "2", "--overwrite", "--model", tmp_path / "nope.pt")
    assert_one_line_error(result, "nope.pt: no such checkpoint")
    assert out.read_text() == '{"path": "a", "label": "x", "prob": 1.0, "top": []}\n'


@pytest.mark.parametrize("torn", [b"path,lab", b"pa", b""])
def test_a_torn_csv_header_is_cut_before_resuming(tmp_path, images, digits, torn):
    """Item 6: a header cut by a kill used to stay in front of the new one (`path,labpath,label,...`)."""
    out = tmp_path / "r.csv"
    out.write_bytes(torn)
    classify_to_files(images, digits, [(out, "csv")], resume=True, batch_size=4, workers=0, device="cpu")
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(O.csv_columns("image")) and len(lines) == 1 + len(images)


def test_an_input_named_twice_gets_one_result_in_one_process_and_after_a_merge(tmp_path, images):
    """Item 17: one rule, each file classified once at its first place (three lines used to come from one process)."""
    folder = images[0].parent
    one = tmp_path / "one.jsonl"
    result = run_cli("predict", images[0], folder, images[0], "--jsonl", one, "--model", IMAGE_MODEL, "--workers", "0")
    assert result.exit_code == 0, result.output
    paths = [json.loads(line)["path"] for line in one.read_text().splitlines()]
    assert len(paths) == len(set(paths)) == len(list(folder.iterdir())) and paths[0] == str(images[0])
    copy = tmp_path / "sharded.jsonl"
    shutil.copy(one, copy)
    assert O.merge_parts(copy, "jsonl", "image", paths) == len(paths)  # the merge's rule: each input once


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_resuming_into_a_file_that_is_not_results_is_refused_and_leaves_it_whole(tmp_path, images, fmt):
    """`predict DIR --jsonl ok.png --resume` (a picture named by mistake) cut the picture after its last
    newline and appended JSON lines to it, exit 0. A file whose first line is not ours is refused, in one
    process and before a sharded run starts; a first line a kill cut short still resumes."""
    picture = images[0].read_bytes()
    target = tmp_path / "photo.png"
    target.write_bytes(picture)
    for extra in ([], ["--devices", "2"]):
        result = run_cli("predict", images[0].parent, f"--{fmt}", target, "--resume", "--model", IMAGE_MODEL, "--workers", "0", *extra)
        assert_one_line_error(result, f"photo.png: not a {fmt.upper()} file of results lstmimg wrote")
        assert target.read_bytes() == picture
    torn = tmp_path / f"torn.{fmt}"
    torn.write_bytes(b'{"path": "imgs/a/0' if fmt == "jsonl" else b"path,label,pr")
    result = run_cli("predict", images[0].parent, f"--{fmt}", torn, "--resume", "--model", IMAGE_MODEL, "--workers", "0")
    assert result.exit_code == 0, result.output
    assert len(torn.read_text().splitlines()) == len(list(images[0].parent.iterdir())) + (fmt == "csv")
