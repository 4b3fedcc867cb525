"""The layering says what it is: dependencies point one way (DESIGN.md, Layout)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "analysis": ("models", "utils", "routes", "tasks", "flask", "celery", "sqlalchemy"),
    "models": ("utils", "routes", "tasks"),
    "utils": ("routes", "tasks"),
}


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downwards(package):
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imported_modules(path):
            if name.split(".")[0] in FORBIDDEN[package]:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_models_have_no_import_at_the_bottom():
    """No cycle hidden by an import after the classes (batch <-> site)."""
    for path in sorted((ROOT / "models").glob("*.py")):
        tree = ast.parse(path.read_text())
        body = [node for node in tree.body if not isinstance(node, ast.Expr)]
        first_def = next((i for i, node in enumerate(body)
                          if isinstance(node, ast.ClassDef | ast.FunctionDef)), len(body))
        late = [node.lineno for node in body[first_def:]
                if isinstance(node, ast.Import | ast.ImportFrom)]
        assert late == [], f"{path.name}: imports after the first definition at {late}"
