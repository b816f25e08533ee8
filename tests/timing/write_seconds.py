"""Write ``seconds.json``: the seconds each test file (or doctest module) took in a run.

    python -m pytest tests spinerisk notebooks --doctest-modules --nbmake -n auto \\
        --dist loadfile --no-loadscope-reorder --junitxml=/tmp/junit.xml
    python tests/timing/write_seconds.py /tmp/junit.xml

``tests/conftest.py`` hands the files to pytest-xdist's workers slowest first, so that
the run does not end on one long file while the other workers wait. The figures only
order the files: a stale or missing figure makes a run slower, never wrong.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def file_seconds(junit: Path) -> dict[str, float]:
    """Seconds per file, keyed by the path pytest reports (``tests/test_x.py``)."""
    seconds: Counter[str] = Counter()
    for case in ET.parse(junit).getroot().iter("testcase"):
        parts = (case.get("classname") or "").split(".")
        if parts[-1] == "ipynb":  # a notebook run by nbmake: notebooks.name.ipynb
            key = "/".join(parts[:-1]) + ".ipynb"
        elif parts[0] == "tests":  # tests.test_x[.Class]
            key = f"tests/{parts[1]}.py"
        else:  # a doctest: its classname is the module's dotted name
            module = "/".join(parts)
            key = f"{module}.py" if (ROOT / f"{module}.py").exists() else f"{module}/__init__.py"
        seconds[key] += float(case.get("time") or 0.0)
    return {k: round(v, 1) for k, v in sorted(seconds.items())}


if __name__ == "__main__":
    out = HERE / "seconds.json"
    out.write_text(json.dumps(file_seconds(Path(sys.argv[1])), indent=1) + "\n")
    print(f"wrote {out}")
