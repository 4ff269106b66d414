"""The house rules of ARCHITECTURE.md, checked on the source: the import arrows, no module found by a name
string, and small files and functions."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The edges (server, sdk, cli) may import each other; the domain packages below them never import HTTP.
STAGE_PACKAGES = ("compress", "retrieval", "organize", "embeddings", "batch")
ENGINES = ("backend.engine", "backend.local", "backend.sglang", "backend.openai_compat")


def modules(package: str) -> list[tuple[str, ast.Module]]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found.append((name, ast.parse(path.read_text(), filename=str(path))))
    return found


def imports_of(name: str, tree: ast.Module) -> set[str]:
    """Absolute names of every module `name` imports (relative imports resolved), lazy ones included."""
    package = name.split(".")
    if not name.endswith("__init__"):
        package = package[:-1] if not (ROOT / Path(*name.split("."))).is_dir() else package
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_no_stage_package_imports_the_http_layer() -> None:
    offenders = [
        (name, imported)
        for name, tree in modules("middleware")
        if name.count(".") >= 1 and name.split(".")[1] in STAGE_PACKAGES
        for imported in imports_of(name, tree)
        if imported.startswith("middleware.server")
        and not imported.startswith("middleware.server.background")
    ]
    assert offenders == []


def test_no_middleware_module_reaches_past_the_backend_seam() -> None:
    offenders = [
        (name, imported)
        for name, tree in modules("middleware")
        for imported in imports_of(name, tree)
        if any(imported == engine or imported.startswith(engine + ".") for engine in ENGINES)
    ]
    assert offenders == []


def test_no_module_is_loaded_by_a_name_string() -> None:
    offenders = [
        name
        for package in ("middleware", "backend")
        for name, tree in modules(package)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "import_module"
    ]
    assert offenders == []


def test_files_and_functions_stay_small() -> None:
    too_long = []
    for package in ("middleware", "backend"):
        for path in (ROOT / package).rglob("*.py"):
            source = path.read_text()
            if source.count("\n") > 420:
                too_long.append(f"{path.relative_to(ROOT)}: {source.count(chr(10))} lines")
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > 65:
                        too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert too_long == []
