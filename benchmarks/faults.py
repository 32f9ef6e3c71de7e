"""The test cases CI leaves out for time, marked `long` (most in tests/faults: the same faults as CI's cases
under other signals and commands; a few costly twins elsewhere), then the soak (`soak.py`).

    python benchmarks/faults.py [--soak-minutes 10] [--out benchmarks/results/faults_long.json]

Writes how many long cases passed, which failed, how long they took, and the soak's figures.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soak-minutes", type=float, default=10)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "faults_long.json")
    args = parser.parse_args()
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "long"], cwd=HERE.parent, capture_output=True, text=True)
    seconds = round(time.monotonic() - started, 1)
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|error)", run.stdout.splitlines()[-1] if run.stdout else "")}
    failed = re.findall(r"^FAILED (\S+)", run.stdout, re.M)
    result = {"long_cases": {"exit_code": run.returncode, "seconds": seconds, **counts, "failed_cases": failed}}
    soak_out = args.out.with_name("soak.json")
    subprocess.run([sys.executable, str(HERE / "soak.py"), "--minutes", str(args.soak_minutes), "--out", str(soak_out)], check=True)
    result["soak"] = {k: v for k, v in json.loads(soak_out.read_text()).items() if k not in ("rss_samples", "drops")}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
