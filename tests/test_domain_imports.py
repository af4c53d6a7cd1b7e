"""The domain stays pure: what tuner.space, tuner.trials, the algorithms and the rules import.

Read from the source (every import statement, function-level ones included), so a lazy import
cannot hide a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TUNER = Path(__file__).resolve().parent.parent / "tuner"
FRAMEWORKS = ("pydantic", "sqlalchemy", "fastapi", "starlette", "httpx", "kubernetes", "yaml")
SERVICE = ("tuner.spec", "tuner.service", "tuner.storage", "tuner.api", "tuner.controller")


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(*relative: str) -> list[Path]:
    out: list[Path] = []
    for r in relative:
        p = TUNER / r
        out += sorted(p.glob("*.py")) if p.is_dir() else [p]
    return out


def starts(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize(
    "path",
    modules("space.py", "trials.py", "algorithms", "early_stopping"),
    ids=lambda p: str(p.relative_to(TUNER)),
)
def test_the_domain_never_imports_the_spec_models_or_the_service(path: Path) -> None:
    bad = sorted(m for m in imports(path) if starts(m, SERVICE + FRAMEWORKS))
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", modules("space.py", "trials.py"), ids=lambda p: p.name)
def test_the_domain_values_import_no_optuna(path: Path) -> None:
    assert not [m for m in imports(path) if starts(m, ("optuna", "numpy", "scipy"))]


def test_algorithms_are_imported_as_part_of_tuner() -> None:
    for path in modules("algorithms", "early_stopping", "spec", "."):
        assert not [m for m in imports(path) if starts(m, ("algorithms",))], path
