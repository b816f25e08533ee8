"""The docs name only modules, objects and files that exist (issue 17 point 5).

Every ``spinerisk.x.y`` name on a docs page must import (as a module, or as an attribute
of the longest importable module prefix), and every ``spinerisk/x/y.py`` path must be a
file or folder of the repository. Path templates such as ``spinerisk/cli/_<command>.py``
are not paths.
"""

from __future__ import annotations

import importlib
import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
DOTTED = re.compile(r"spinerisk(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
PATH = re.compile(r"spinerisk/[A-Za-z0-9_/.]*[A-Za-z0-9_/]")


def _missing_name(name: str) -> str | None:
    """Why ``name`` does not resolve, or None when it does."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is not None and not module.startswith(exc.name):
                return f"importing {module} needs {exc.name}"
            continue
        with warnings.catch_warnings():  # a deprecated alias still exists
            warnings.simplefilter("ignore", DeprecationWarning)
            for attr in parts[i:]:
                if not hasattr(obj, attr):
                    return f"{module} has no attribute {'.'.join(parts[i:])}"
                obj = getattr(obj, attr)
        return None
    return "no such module"


def missing_names(text: str) -> list[str]:
    """The spinerisk names and paths of ``text`` that do not exist, with the reason."""
    problems = []
    for name in sorted({n.rstrip(".") for n in DOTTED.findall(text)}):
        why = _missing_name(name)
        if why:
            problems.append(f"{name}: {why}")
    paths = {m.group() for m in PATH.finditer(text) if text[m.end() : m.end() + 1] != "<"}
    for path in sorted(paths):
        if not (ROOT / path.rstrip("/")).exists():
            problems.append(f"{path}: no such file or folder")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_docs_name_only_what_exists(page: Path) -> None:
    assert missing_names(page.read_text(encoding="utf-8")) == []


def test_the_check_reports_what_does_not_exist() -> None:
    text = (
        "`spinerisk.explain.explain` and `spinerisk.models._risk_model` moved; see "
        "`spinerisk/monitor/_reference.py`, `spinerisk/cli/_<command>.py` and "
        "`spinerisk.schema.resolve_schema`."
    )
    assert missing_names(text) == [
        "spinerisk.explain.explain: spinerisk has no attribute explain.explain",
        "spinerisk.models._risk_model: spinerisk.models has no attribute _risk_model",
        "spinerisk/monitor/_reference.py: no such file or folder",
    ]
