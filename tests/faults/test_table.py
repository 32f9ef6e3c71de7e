"""docs/reliability.md's fault-suite table names every test of tests/faults, and nothing else."""

from __future__ import annotations

import ast
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent.parent / "docs" / "reliability.md"


def test_the_reliability_table_lists_every_fault_case():
    tests = {node.name for f in HERE.glob("test_*.py") for node in ast.parse(f.read_text(encoding="utf-8")).body
             if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and f.name != "test_table.py"}
    section = DOC.read_text(encoding="utf-8").split("## The fault suite", 1)[1]
    listed = set(re.findall(r"^\| `(test_\w+)`", section, re.M))
    assert listed == tests, f"missing from the table: {sorted(tests - listed)}; not a test: {sorted(listed - tests)}"
