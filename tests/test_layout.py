"""The package's layout: stages import only stages below them, and no modules import each other in a
circle (imports inside functions count)."""

import ast
from pathlib import Path

import lstmimg

ROOT = Path(lstmimg.__file__).parent
# The stages, lowest first. The modules at the package root are shared by every stage.
STAGES = {"base": 0, "data": 1, "models": 2, "engine": 3, "bench": 4, "cli": 5}
ENTRY_POINTS = {"lstmimg", "lstmimg.__main__"}  # the public API (lazy, by name) and `python -m lstmimg`: above every stage


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ["lstmimg", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def stage(module: str) -> int:
    parts = module.split(".")
    return STAGES.get(parts[1], 0) if len(parts) > 2 or parts[1] in STAGES else STAGES["base"]


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules ``module`` imports anywhere in its file (a name imported from a package
    counts as its submodule when there is one)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module and name != "lstmimg":
                out.add(name)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports(m, p, known) for m, p in known.items()}


def test_stages_import_only_stages_below_them():
    upward = [f"{m} -> {t}" for m, targets in graph().items() if m not in ENTRY_POINTS for t in targets if stage(t) > stage(m)]
    assert upward == []


def test_no_import_circle():
    g = graph()
    circles, done = [], set()

    def reaches(start: str) -> set[str]:
        seen, todo = set(), list(g[start])
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo += g.get(m, ())
        return seen

    for m in g:
        if m in reaches(m) and m not in done:
            circle = sorted(x for x in g if x in reaches(m) and m in reaches(x)) + [m]
            circles.append(", ".join(sorted(set(circle))))
            done |= set(circle)
    assert circles == []


def test_the_checks_see_an_upward_import_and_a_circle(tmp_path):
    """The reader above finds what it is meant to find: on a made-up package with a data module that
    imports the engine, and two modules that import each other."""
    known = {"lstmimg.data.x": tmp_path / "x.py", "lstmimg.engine.y": tmp_path / "y.py"}
    known["lstmimg.data.x"].write_text("def f():\n    from lstmimg.engine.y import g\n")
    known["lstmimg.engine.y"].write_text("from lstmimg.data import x\n")
    assert imports("lstmimg.data.x", known["lstmimg.data.x"], known) == {"lstmimg.engine.y"}
    assert imports("lstmimg.engine.y", known["lstmimg.engine.y"], known) == {"lstmimg.data.x"}
    assert stage("lstmimg.engine.y") > stage("lstmimg.data.x") > stage("lstmimg.config")
