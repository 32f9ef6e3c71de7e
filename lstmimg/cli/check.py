"""`lstmimg check`: what is wrong in a data folder, said in a few lines, with the lists in CSV files."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from lstmimg.cli.base import app, check_min, err, out, run_guarded
from lstmimg.errors import LstmimgError

CHECK_FILES = ("duplicates.csv", "leaks.csv", "unreadable.csv", "outliers.csv", "label_issues.csv", "index.html")


@app.command()
def check(
    data: Annotated[Path, typer.Argument(help="A folder `lstmimg train` accepts: class folders, or train/ val/ (test/) of class folders; images or videos.")],
    labels: Annotated[bool, typer.Option(help="Also find likely label errors: a model trained on K-1 folds scores each fold, confident learning ranks the samples.")] = False,
    folds: Annotated[int, typer.Option(help="Folds of the cross-fitting with --labels.")] = 4,
    time: Annotated[float | None, typer.Option("--time", help="Seconds --labels may take in all (shared over the folds). Default: no limit.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder of the CSV lists. Default: runs/check/NAME.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace the lists already in --out.")] = False,
    val_split: Annotated[float, typer.Option(help="Without val/: the share of each class `train` would hold out (leaks are counted against that split).")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of that split and of the folds.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps (--labels trains).")] = "auto",
):
    """Find what is wrong in the data: unreadable files, duplicates and leaks between splits, imbalance, odd files; with --labels, likely label errors."""

    def work():
        import json

        from lstmimg.config import check_device
        from lstmimg.engine.health.check import check as find
        from lstmimg.engine.health.check import write_findings
        from lstmimg.engine.health.labels import label_issues
        from lstmimg.files import check_output_folder

        check_min("--folds", folds, 2)
        check_device(device)
        if time is not None and time <= 0:
            raise LstmimgError(f"--time must be > 0, got {time}")
        folder = out_dir or Path("runs") / "check" / (data.resolve().name or "data")
        check_output_folder(folder, "--out")
        if not overwrite:
            for name in CHECK_FILES:
                if (folder / name).exists():
                    raise LstmimgError(f"{folder / name}: exists; choose another --out or add --overwrite (nothing was replaced)")
        with err.status("reading every file", spinner="dots") if err.is_terminal else nullcontext():
            findings = find(data, val_split, seed)
        if labels:
            def on_event(event, info):
                if event == "end" and err.is_terminal:
                    err.print(f"  fold trained: val accuracy {info.get('val_accuracy', 0):.4f}", highlight=False)

            findings["label_issues"] = label_issues(data, folds, time, val_split, seed, device, on_event)
        write_findings(findings, folder)
        from lstmimg.engine.health.check_page import check_page

        page = check_page(findings, folder, overwrite=True)  # the lists beside it were checked above
        findings["page"] = page["index"]
        if json_out:
            sys.stdout.write(json.dumps(findings, indent=2, ensure_ascii=False, default=str) + "\n")
        else:
            say(findings, folder, data)

    run_guarded(work)


def say(f: dict, folder: Path, data: Path) -> None:
    """The findings in a few lines, each naming the file that lists them."""
    p = lambda text: out.print(text, markup=False, highlight=False)  # noqa: E731  (paths are text, never markup)
    kind = f["kind"]
    p(f"checked {f['files']:,} {kind}s in {f['scan_seconds']} s ({f['files_per_second']}/s): " + ", ".join(f"{n} {name}" for name, n in f["split"].items()))
    p(f"  unreadable: {len(f['unreadable'])}" + (f" (listed in {folder / 'unreadable.csv'})" if f["unreadable"] else ""))
    for u in f["unreadable"][:5]:
        p(f"    {u['error']}")
    groups = lambda n: f"{n} group{'s' if n != 1 else ''}"  # noqa: E731
    p(f"  duplicates: {f['duplicate_files']} extra cop{'ies' if f['duplicate_files'] != 1 else 'y'} in {groups(len(f['duplicates']))}" + (f" ({folder / 'duplicates.csv'})" if f["duplicates"] else ""))
    leaks = f["leaks"]
    p(f"  leaks between splits: {groups(len(leaks))}" + (f": the same {kind} in " + ", ".join(sorted({'/'.join(sorted({m['split'] for m in g['members']})) for g in leaks})) + f" ({folder / 'leaks.csv'})" if leaks else ""))
    c = f["classes"]
    counts = [row["train"] for row in c["per_class"]]
    p(f"  classes: {len(counts)}, train counts {min(counts)}..{max(counts)} (imbalance {c['imbalance']}x)")
    if c["too_small_to_learn"]:
        p(f"    too few to learn (< {c['min_train']} train samples): {', '.join(c['too_small_to_learn'])}")
    if c["too_small_to_validate"]:
        p(f"    too few to validate (< {c['min_val']} val samples): {', '.join(c['too_small_to_validate'])}")
    p(f"  unlike the rest: {len(f['outliers'])}" + (f" ({folder / 'outliers.csv'})" if f["outliers"] else ""))
    for o in f["outliers"][:5]:
        p(f"    {o['path']}: {o['problem']}")
    exclude = []
    if "label_issues" in f:
        li = f["label_issues"]
        p(f"  likely label errors: {len(li['issues'])} of {li['judged']} train files judged ({li['folds_done']} of {li['folds']} folds trained in {li['seconds']} s"
          + (f" of a {li['budget']:.0f} s budget)" if li["budget"] else ")") + (f" ({folder / 'label_issues.csv'})" if li["issues"] else ""))
        for issue in li["issues"][:5]:
            p(f"    {issue['path']}: labelled {issue['given']}, looks like {issue['suggested']} (score {issue['score']})")
        noisy = {k: v for k, v in li["noise_rate"].items() if v > 0}
        if noisy:
            p("    estimated share mislabelled per class: " + ", ".join(f"{k} {v:.1%}" for k, v in sorted(noisy.items(), key=lambda kv: -kv[1])[:6]))
        if li["issues"]:
            exclude.append(folder / "label_issues.csv")
    if f["duplicates"]:
        exclude.append(folder / "duplicates.csv")
    p(f"  page: {f['page']} (each group of copies side by side" + (", the likely label errors with their given and suggested labels)" if "label_issues" in f else ")"))
    if exclude:
        p(f"next: look at the lists, then train without those files: lstmimg train {data} " + " ".join(f"--exclude {e}" for e in exclude))
    elif "label_issues" not in f:
        p(f"next: lstmimg check {data} --labels  (likely label errors: it trains one model per fold)")
