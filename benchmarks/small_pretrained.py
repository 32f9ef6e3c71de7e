"""Small images with a pretrained backbone: read at their own size, or enlarged to the size the weights
were trained at (what `--pretrained` does), or to a floor between the two.

    pip install '.[benchmarks]' && python benchmarks/small_pretrained.py [--sides 12,16] [--seeds 0,1] [--json FILE]

This machine cannot download ImageNet weights, so the pretrained backbone is made as in
``fine_tune.py``: a resnet18 trained on 48x48 crops of 7 of scikit-image's photographs (48 is then "the
size the weights were trained at"). The target task is crops of the 7 other photographs, stored small
(``--sides``). For each, `lstmimg train --backbone resnet18 --backbone-weights SOURCE --freeze-backbone`
runs at ``--img-size`` = the stored side, 24 (a floor) and 48 (the weights' size), each in a fresh
process: val accuracy and wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from fine_tune import SOURCE, TARGET, pretrain, train
from user_sets import photo_crops

WEIGHTS_SIDE = 48


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="12,16", help="comma-separated sides the target crops are stored at")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lstmimg-small-pretrained-"))
    photo_crops(work / "source", 64, 16, seed=11, side=WEIGHTS_SIDE, photos=SOURCE)
    weights = work / "source_resnet18.pt"
    results: dict = {"source_val_accuracy": round(pretrain(work / "source", weights), 4), "runs": []}
    for side in (int(s) for s in args.sides.split(",")):
        target = work / f"target{side}"
        photo_crops(target, 48, 12, seed=12, side=side, photos=TARGET)
        for read_at in sorted({side, 24, WEIGHTS_SIDE}):
            for seed in args.seeds.split(","):
                run = train(target, work / "runs" / f"{side}_{read_at}_{seed}", "--backbone-weights", str(weights), "--freeze-backbone", "--img-size", str(read_at), "--seed", seed)
                results["runs"].append({"stored_side": side, "read_at": read_at, "seed": int(seed), **run})
                print(json.dumps(results["runs"][-1]), flush=True)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
