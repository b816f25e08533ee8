"""A process that ends while the fast path compiles in the background ends normally.

``predict_risk`` on records given as dicts builds the fast path, whose XGBoost boosters
compile to C in a background thread (``compile="background"``). The compilation holds
back treelite's and tl2cgen's log lines. It used to do so by swapping the process's
``sys.stdout`` and descriptor 2 for the whole process: what the user's code printed
meanwhile was held too, and when the script ended before the compiler did, everything
after the fit (the risks, the atexit handlers' output, a traceback) was lost and the
process seemed to exit silently with status 0. The script below must show all of it.
Model fitted on a SYNTHETIC cohort (no clinical validity).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("tl2cgen", reason="the compiled path needs the 'compiled' extra")

SCRIPT = textwrap.dedent(
    """
    import atexit, sys, warnings
    import spinerisk as sr
    from spinerisk.fastpath import _compiled

    warnings.simplefilter("ignore")
    cohort = sr.make_spine_cohort(300, seed=0)
    model = sr.RiskModel(endpoint="nonunion", backend="xgboost").fit(cohort)
    records = [
        {k: (None if v != v else v) for k, v in r.items()}
        for r in cohort.head(3).to_dict("records")
    ]
    atexit.register(lambda: print("atexit handler ran", flush=True))
    risks = model.predict_risk(records)
    print("compiling:", _compiled._Quiet._state is not None, flush=True)
    print("rows:", len(risks), "risk:", round(float(risks.iloc[0, 0]), 6), flush=True)
    print("a line to stderr", file=sys.stderr, flush=True)
    raise RuntimeError("the script's own error")
    """
)


def test_script_ending_during_background_compilation_keeps_its_output():
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    out, err = run.stdout, run.stderr
    # the case under test: the compiler was still running when the script went on
    assert "compiling: True" in out, (out, err)
    assert "rows: 3 risk: 0." in out, (out, err)
    assert "atexit handler ran" in out, (out, err)
    assert "a line to stderr" in err, (out, err)
    assert "RuntimeError: the script's own error" in err, (out, err)
    assert run.returncode == 1, (run.returncode, out, err)
    # the libraries' own notes stay held back
    assert "Treelite version" not in out + err
    assert "Parallel compilation" not in out + err
    # tl2cgen's temporary directory was not removed under the compiler's feet at exit
    assert "Directory not empty" not in err and "OSError" not in err, err


def test_background_compilation_is_waited_for_at_exit():
    """The compiling thread is not a daemon: the interpreter waits for it before its exit
    handlers remove temporary directories (with a daemon thread, a script that ended
    during compilation printed "OSError: [Errno 39] Directory not empty" now and then)."""
    import warnings

    import spinerisk as sr
    from spinerisk.fastpath import FastPredictor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # small boosters: what is checked is the thread, not what it compiles
        model = sr.RiskModel(
            endpoint="nonunion",
            backend="xgboost",
            booster_params={"n_estimators": 20, "max_depth": 2},
        ).fit(sr.make_spine_cohort(300, seed=0))
    fast = FastPredictor.from_model(model, compile="background")
    assert fast._compiling is not None and not fast._compiling.daemon
    fast.wait_compiled(120)
