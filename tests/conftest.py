"""Shared fixtures: small seeded synthetic cohorts (never real patient data)."""

from __future__ import annotations

import os


def _share_cores_between_workers() -> None:
    """Give each pytest-xdist worker its own share of the cores.

    The library runs its boosters and candidate fits on every core this process may use
    (``spinerisk._threads.n_threads``); with one worker per core, each worker would start a
    thread per core and the OpenMP threads of the workers would contend for the same cores.
    Runs before the boosters are imported, so their thread pools see the share.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2 or not hasattr(os, "sched_setaffinity"):
        return  # not a worker, or not Linux
    cores = sorted(os.sched_getaffinity(0))
    index = int(worker.removeprefix("gw"))
    share = cores[index::count] if len(cores) >= count else [cores[index % len(cores)]]
    os.sched_setaffinity(0, share)


_share_cores_between_workers()

import pandas as pd  # noqa: E402 - after the cores are shared
import pytest  # noqa: E402

import spinerisk as sr  # noqa: E402


@pytest.fixture(scope="session")
def _cohort_300() -> pd.DataFrame:
    return sr.make_spine_cohort(300, seed=0)


@pytest.fixture
def cohort(_cohort_300: pd.DataFrame) -> pd.DataFrame:
    """A fresh copy of a 300-record synthetic cohort (tests may modify it)."""
    return _cohort_300.copy()


@pytest.fixture(scope="session")
def valid_cohort(_cohort_300: pd.DataFrame) -> pd.DataFrame:
    """The same cohort after validation (schema dtypes). Do not modify."""
    return sr.validate(_cohort_300)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the slowest files first (``tests/timing/seconds.json``; files it does not know
    after, in their own order): pytest-xdist's ``--dist loadfile --no-loadscope-reorder``
    (``make test``) then hands the workers the long files early, so the run does not end
    on one long file while the other worker waits. Without ``--no-loadscope-reorder``
    xdist orders the files by their number of tests instead, which put the longest
    single-test files last."""
    import json
    from pathlib import Path

    known = json.loads((Path(__file__).parent / "timing" / "seconds.json").read_text())
    items.sort(key=lambda item: -known.get(item.nodeid.split("::", 1)[0], 0.0))  # stable
