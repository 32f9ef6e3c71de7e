"""The page of ``lstmimg check``: each group of duplicates side by side (leaks marked), and the likely
label errors as a gallery with their given and suggested labels, built on the review page
(engine/review/report.py) so it opens from disk the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lstmimg.engine.review.report import THUMB_SIDE, ReportWriter, thumbnail_jpeg

GROUPS_SHOWN = 300  # groups of copies drawn at most (all are in duplicates.csv)
ISSUES_SHOWN = 1000  # likely label errors drawn at most (all are in label_issues.csv)


def check_page(findings: dict, out: str | Path, overwrite: bool = False) -> dict:
    """``out/index.html`` for the ``findings`` of ``check`` (with ``label_issues`` when it was asked):
    returns ``ReportWriter.close``'s figures."""
    from lstmimg.engine.health.check import kept
    from lstmimg.engine.review.mistakes import thumbnail

    kind = findings["kind"]
    classes = [row["class"] for row in findings["classes"]["per_class"]]
    issues = findings.get("label_issues", {}).get("issues", [])[:ISSUES_SHOWN]
    title = f"lstmimg check: {findings['data']}"
    scored = (f"Samples: the {len(issues)} likely label errors, most likely first; 'true' is the label the folder gives, 'predicted' the one "
              "models trained without the file suggest (their out-of-sample probabilities)" if "label_issues" in findings else
              "Without --labels: duplicates and leaks only (lstmimg check DATA --labels finds likely label errors)")
    writer = ReportWriter(out, kind, classes, title, labelled=bool(issues), overwrite=overwrite, scored=scored,
                          predictions_csv=False)  # label_issues.csv and duplicates.csv beside it say it all
    index = {c: k for k, c in enumerate(classes)}
    for issue in issues:
        pixels = thumbnail(kind, Path(issue["path"]), THUMB_SIDE)
        writer.add(issue["path"], torch.tensor(issue["probs"]), index[issue["given"]], pixels=pixels, channels_last=True)
    for u in findings["unreadable"]:
        writer.skip(u["path"], u["error"])
    groups = []
    for d in findings["duplicates"][:GROUPS_SHOWN]:
        members, keep = [], kept(d["members"])
        for m, member in enumerate(d["members"]):
            pixels = thumbnail(kind, Path(member["path"]), THUMB_SIDE)
            name = None
            if pixels is not None:
                name = f"thumbs/g{d['group']:05d}_{m:03d}.jpg"
                (writer.out / name).write_bytes(thumbnail_jpeg(np.asarray(pixels), channels_last=True))
            members.append({"path": member["path"], "split": member["split"], "label": member["label"], "copy": "exact" if member["same_bytes"] else "near",
                            "keep": member is keep, "thumb": name})
        groups.append({"group": d["group"], "leak": len({m["split"] for m in members}) > 1, "members": members})
    label = "likely label errors shown" if "label_issues" in findings else "label errors not looked for (--labels)"
    return writer.close({"check": True, "samples_label": label, "groups": groups, "groups_total": len(findings["duplicates"])})
