"""XGBoost boosters compiled to C for predictions (treelite + tl2cgen).

treelite reads an XGBoost booster's trees, tl2cgen writes them out as C and
compiles them with the machine's C compiler into a shared library. One row is then one
call of the library's ``predict`` function through ctypes: a few microseconds, against
~35 us for XGBoost's own one-row call. Several rows are one call of tl2cgen's runtime,
which loops over them with the same function (:func:`compiled_rows`; 100 rows about 3x
faster than ``inplace_predict``, one converted matrix for every booster reading it).
Libraries are built from the trees when a :class:`~spinerisk.fastpath.FastPredictor` is
built, into a cache directory private to the process (removed at exit, shared by
identical boosters): a saved bundle holds trees, never code.

Compiled trees give the booster's own answer:

* XGBoost sums its trees in single precision, starting from the base margin; the
  compiled code sums them in the same order from zero and adds the base margin last. So
  that both sums are the same sequence of float32 additions, the base margin is folded
  into the first tree's leaves (each leaf becomes ``float32(base + leaf)``, what XGBoost
  holds after the first tree) and the compiled base is zero.
* Only the trees XGBoost would use (its ``iteration_range``) are compiled.
* Rows are numpy arrays holding category codes: XGBoost's category encoder (names to
  codes, for DataFrames) is left out.
* A booster whose trees cannot be compiled exactly (DART, several outputs, a
  missing-value marker other than NaN) is not
  compiled; :class:`CompileUnavailable` says why and the caller keeps the library's own
  call.

The caller checks compiled answers against the library's on probe rows before using
them (see ``XGBoostHead.compile``).
"""

from __future__ import annotations

import atexit
import copy
import ctypes
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CompileUnavailable",
    "CompiledTrees",
    "NotWorthIt",
    "compile_xgboost",
    "compiled_outputs",
    "compiled_rows",
]

#: Flags added after tl2cgen's own ``-O3``: the last ``-O`` wins. ``-O1`` compiles a
#: 300-tree booster about 3x faster than ``-O3`` and the code answers as fast (the trees
#: are branches, which ``-O3`` does not speed up).
_OPTIONS = ["-O1", "-fsingle-precision-constant"]
#: C sources per booster (compiled in parallel by tl2cgen).
_PARALLEL_COMP = 2
#: Boosters with more tree nodes than this are not compiled: compile time grows with the
#: nodes (about 0.5 s per 5,000 on 2 cores; the stacked default's 200-tree random forest
#: took 14 s under load) while a one-row XGBoost call stays ~35-60 us.
MAX_NODES = 20_000

_LOCK = threading.Lock()
_LIBRARIES: dict[str, Path] = {}
_CACHE: list[Path] = []


class CompileUnavailable(Exception):
    """A booster cannot be compiled here; the message says why."""


class NotWorthIt(CompileUnavailable):
    """A booster too large to compile quickly (more than :data:`MAX_NODES` tree nodes)."""


def _cache_dir() -> Path:
    """This process's directory of compiled libraries (removed at exit)."""
    if not _CACHE:
        path = Path(tempfile.mkdtemp(prefix=f"spinerisk-trees-{os.getpid()}-"))
        atexit.register(_remove, path, os.getpid())
        _CACHE.append(path)
    return _CACHE[0]


def _remove(path: Path, pid: int) -> None:
    """Remove the cache at exit of the process that made it (not of a forked worker)."""
    if os.getpid() == pid:
        shutil.rmtree(path, ignore_errors=True)


def toolchain() -> str:
    """The C compiler tl2cgen will call (``gcc`` or ``clang``), or raise."""
    for name in ("gcc", "clang"):
        if shutil.which(name):
            return name
    raise CompileUnavailable("no C compiler (gcc or clang) on the PATH")


def _modules() -> tuple[Any, Any]:
    try:
        import tl2cgen
        import treelite
    except ImportError as exc:
        raise CompileUnavailable(
            f"{exc.name} is not installed (pip install 'spinerisk[compiled]')"
        ) from exc
    return treelite, tl2cgen


class _Routed:
    """``sys.stdout`` or ``sys.stderr`` while :class:`_Quiet` is active: what a quiet
    thread writes is held, what any other thread writes goes on at once to the stream
    it would have reached. Other attributes are the stream's."""

    def __init__(self, stream: Any, held: io.StringIO, quiet: dict[int, int]) -> None:
        self._stream = stream
        self._held = held
        self._quiet = quiet

    def write(self, text: str) -> int:
        if threading.get_ident() in self._quiet:
            return self._held.write(text)
        return int(self._stream.write(text))

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Quiet:
    """Hold back what treelite and tl2cgen print while they run: their C++ code logs a
    version note on every model it reads and a line per compilation, to the process's
    stderr (file descriptor 2) and through Python's ``print``. Anything else is passed on
    when the outermost use ends.

    Compilation runs in a background thread while the user's code goes on, and the
    process may end before it does. So only what the threads inside a ``_Quiet`` write
    through ``sys.stdout``/``sys.stderr`` is held; other threads' writes go out at once
    (:class:`_Routed`). Descriptor 2 cannot tell threads apart: it is redirected to a
    file, and put back (the held text passed on) by the outermost exit or, if the process
    ends first, at exit. Nested and concurrent uses share one capture.
    """

    NOTES = (
        "originated from a newer Treelite version",
        "Currently running Treelite version",
        "The model checkpoint was generated from Treelite version",
        "Parallel compilation",
    )
    _lock = threading.Lock()
    _quiet: dict[int, int] = {}  # thread id -> depth of its nested uses
    _state: Any = None
    _at_exit = False
    _ended = False  # the process is exiting: nothing more is held

    def __enter__(self) -> _Quiet:
        cls = type(self)
        with cls._lock:
            if cls._ended:
                return self
            if cls._state is None:
                cls._state = cls._capture()
            ident = threading.get_ident()
            cls._quiet[ident] = cls._quiet.get(ident, 0) + 1
        return self

    def __exit__(self, *exc: Any) -> None:
        cls = type(self)
        with cls._lock:
            ident = threading.get_ident()
            depth = cls._quiet.pop(ident, 0) - 1
            if depth > 0:
                cls._quiet[ident] = depth
            if cls._quiet or cls._state is None:
                return
            state, cls._state = cls._state, None
        cls._release(state)

    @classmethod
    def _capture(cls) -> tuple[Any, ...]:
        """Redirect descriptor 2 to a file and route ``sys.stdout``/``sys.stderr``."""
        if not cls._at_exit:
            atexit.register(cls._end_at_exit)
            cls._at_exit = True
        sys.stdout.flush()
        sys.stderr.flush()
        file = tempfile.TemporaryFile()
        saved = os.dup(2)
        os.dup2(file.fileno(), 2)
        # Python's writes to stderr by other threads go to the saved descriptor at once
        real_err = open(  # noqa: SIM115 - closed by _release
            saved,
            "w",
            encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
            errors="backslashreplace",
            buffering=1,
            closefd=False,
        )
        out, err = io.StringIO(), io.StringIO()
        routed = (_Routed(sys.stdout, out, cls._quiet), _Routed(real_err, err, cls._quiet))
        state = (file, saved, real_err, sys.stdout, sys.stderr, routed, out, err)
        sys.stdout, sys.stderr = routed
        return state

    @classmethod
    def _release(cls, state: tuple[Any, ...]) -> None:
        """Put the streams back and pass on what was held but the notes."""
        file, saved, real_err, stdout, stderr, routed, out, err = state
        # a stream swapped in by someone else meanwhile stays; ours then passes all on
        if sys.stdout is routed[0]:
            sys.stdout = stdout
        if sys.stderr is routed[1]:
            sys.stderr = stderr
        routed[0]._stream, routed[1]._stream = stdout, stderr
        routed[0]._quiet = routed[1]._quiet = {}
        real_err.flush()
        real_err.close()
        os.dup2(saved, 2)
        os.close(saved)
        file.seek(0)
        fd_text = file.read().decode("utf-8", "replace")
        file.close()
        for text, stream in ((fd_text + err.getvalue(), stderr), (out.getvalue(), stdout)):
            kept = [ln for ln in text.splitlines() if ln and not any(n in ln for n in cls.NOTES)]
            if kept:
                stream.write("\n".join(kept) + "\n")
                stream.flush()

    @classmethod
    def _end_at_exit(cls) -> None:
        """At exit, with a compilation still running: streams back, held text passed on."""
        with cls._lock:
            state, cls._state = cls._state, None
            cls._quiet.clear()
            cls._ended = True
        if state is not None:
            cls._release(state)


def _build(model: Any, key: str) -> Path:
    """Compile a treelite model (once per process and key) and return the library."""
    with _LOCK:
        path = _LIBRARIES.get(key)
        folder = _cache_dir() / key
    if path is not None:
        return path
    _, tl2cgen = _modules()
    compiler = toolchain()
    path = folder / "trees.so"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _Quiet():
            tl2cgen.export_lib(
                model,
                toolchain=compiler,
                libpath=str(path),
                params={"parallel_comp": _PARALLEL_COMP},
                nthread=_PARALLEL_COMP,
                options=list(_OPTIONS),
            )
    except Exception as exc:  # a compiler or tl2cgen failure: keep XGBoost's call
        raise CompileUnavailable(f"compiling the trees failed: {exc}") from exc
    with _LOCK:
        return _LIBRARIES.setdefault(key, path)


def _key(text: str | bytes, kind: str) -> str:
    import tl2cgen
    import treelite

    digest = hashlib.sha256(text if isinstance(text, bytes) else text.encode())
    digest.update(f"{kind}|{treelite.__version__}|{tl2cgen.__version__}|{_OPTIONS}".encode())
    return digest.hexdigest()[:32]


def compile_xgboost(booster: Any, *, iteration_range: tuple[int, int], missing: float) -> Path:
    """Compile the trees of an ``xgboost.Booster`` (the rounds of ``iteration_range``).

    Returns the shared library; raises :class:`CompileUnavailable`.
    """
    treelite, _ = _modules()
    if not (isinstance(missing, float) and np.isnan(missing)):
        raise CompileUnavailable(f"the booster's missing-value marker is {missing!r}, not NaN")
    doc = json.loads(booster.save_raw("json"))
    learner = doc["learner"]
    gbm = learner["gradient_booster"]
    if gbm.get("name") != "gbtree":
        raise CompileUnavailable(f"a {gbm.get('name')!r} booster (only gbtree is compiled)")
    params = learner["learner_model_param"]
    if int(params.get("num_class", 0)) > 1 or int(params.get("num_target", 1)) != 1:
        raise CompileUnavailable("a booster with several outputs")
    trees_model = gbm["model"]
    # XGBoost keeps the training category names to re-code a DataFrame's categories;
    # a numpy row (what the fast path passes: codes) is used as it is, and treelite
    # refuses the encoder, so it is dropped
    trees_model.pop("cats", None)
    begin, end = (int(i) for i in iteration_range)
    indptr = trees_model.get("iteration_indptr")
    if begin != 0 or indptr is None:
        raise CompileUnavailable(f"iteration_range={iteration_range!r}")
    if 0 < end < len(indptr) - 1:  # only the rounds XGBoost predicts with
        n = int(indptr[end])
        trees_model["trees"] = trees_model["trees"][:n]
        trees_model["tree_info"] = trees_model["tree_info"][:n]
        trees_model["iteration_indptr"] = indptr[: end + 1]
        num = trees_model["gbtree_model_param"]["num_trees"]
        trees_model["gbtree_model_param"]["num_trees"] = type(num)(n)
    if not trees_model["trees"]:
        raise CompileUnavailable("a booster without trees")
    nodes = sum(int(t["tree_param"]["num_nodes"]) for t in trees_model["trees"])
    if nodes > MAX_NODES:
        raise NotWorthIt(f"a booster of {nodes} tree nodes (more than {MAX_NODES})")
    base = _base_margin(booster, doc)
    _fold_base(trees_model["trees"][0], base)
    with _Quiet():
        model = treelite.frontend.from_xgboost_json(json.dumps(doc))
    model.get_header_accessor().set_field("base_scores", np.zeros(1, dtype=np.float64))
    return _build(model, _key(json.dumps(doc, sort_keys=True), "xgboost"))


def _base_margin(booster: Any, doc: dict[str, Any]) -> np.float32:
    """XGBoost's base margin, bit for bit: the margin of a copy of the booster whose only
    tree is the first one with its leaves set to zero (the objective's transform of
    ``base_score`` is XGBoost's own, in its own precision)."""
    import xgboost as xgb

    one = copy.deepcopy(doc)
    model = one["learner"]["gradient_booster"]["model"]
    tree = model["trees"][0]
    for field in ("split_conditions", "base_weights"):
        for i, child in enumerate(tree["left_children"]):
            if child == -1:
                tree[field][i] = 0.0
    model["trees"] = [tree]
    model["tree_info"] = model["tree_info"][:1]
    model["iteration_indptr"] = [0, 1]
    num = model["gbtree_model_param"]["num_trees"]
    model["gbtree_model_param"]["num_trees"] = type(num)(1)
    zero = xgb.Booster(model_file=bytearray(json.dumps(one).encode()))
    row = np.full((1, int(booster.num_features())), np.nan)
    margin = zero.inplace_predict(row, predict_type="margin", validate_features=False)
    return np.float32(np.asarray(margin).reshape(-1)[0])


def _fold_base(tree: dict[str, Any], base: np.float32) -> None:
    """Replace each leaf value ``v`` of an XGBoost JSON tree by ``float32(base + v)``."""
    left = tree["left_children"]
    for field in ("split_conditions", "base_weights"):
        values = tree[field]
        for i, child in enumerate(left):
            if child == -1:  # a leaf: its value is in split_conditions (and base_weights)
                values[i] = float(np.float32(base + np.float32(values[i])))


class CompiledTrees:
    """One compiled booster answering one row: ``trees(x) -> float``.

    Parameters
    ----------
    path : Path
        Shared library written by tl2cgen.
    margin : bool
        Raw margin (True) or the objective's transformed value (False).
    n_features : int
        Row length the booster expects.
    """

    def __init__(self, path: Path, *, margin: bool, n_features: int) -> None:
        lib = ctypes.CDLL(str(path))
        try:
            fn = lib.predict
        except AttributeError as exc:  # pragma: no cover - another tl2cgen code layout
            raise CompileUnavailable("the compiled library has no predict function") from exc
        lib.get_threshold_type.restype = ctypes.c_char_p
        lib.get_leaf_output_type.restype = ctypes.c_char_p
        dtypes = {b"float32": np.float32, b"float64": np.float64}
        entry = dtypes.get(lib.get_threshold_type())
        leaf = dtypes.get(lib.get_leaf_output_type())
        if entry is None or leaf is None or int(lib.get_num_target()) != 1:
            raise CompileUnavailable("the compiled library has an unexpected layout")
        n_class = (ctypes.c_int32 * 1)()
        lib.get_num_class(n_class)
        if int(n_class[0]) != 1 or int(lib.get_num_feature()) > n_features:
            raise CompileUnavailable("the compiled library has an unexpected layout")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        fn.restype = None
        self.path = path
        self._lib = lib  # keeps the library loaded
        self._fn = fn
        self._margin = 1 if margin else 0
        self._entry = entry
        self._leaf = leaf
        self._n = int(n_features)
        #: boosters with the same layout read one row buffer (:func:`compiled_outputs`)
        self.layout = (self._n, entry, leaf)
        self._local = threading.local()  # per thread: tl2cgen's runtime predictor

    def _predictor(self) -> Any:
        """tl2cgen's runtime predictor on this library, one per calling thread (it keeps
        state between calls), running in that thread only (``nthread=1``)."""
        predictor = getattr(self._local, "predictor", None)
        if predictor is None:  # it prints nothing (unlike the compilation: no _Quiet)
            _, tl2cgen = _modules()
            predictor = self._local.predictor = tl2cgen.Predictor(str(self.path), nthread=1)
        return predictor

    def __call__(self, x: np.ndarray) -> float | None:
        """The booster's output for one row (float64 NaN = missing); None if the row
        holds a value the compiled code would read as missing (then call the library)."""
        out = compiled_outputs((self,), x)
        return None if out is None else out[0]

    def rows(self, X: np.ndarray) -> np.ndarray | None:
        """The booster's outputs for the rows of ``X`` (float64 NaN = missing), as float64;
        None if a row holds a value the compiled code would read as missing (see
        :func:`compiled_rows`)."""
        out = compiled_rows((self,), X)
        return None if out is None else out[0]


def compiled_rows(trees: Any, X: np.ndarray) -> list[np.ndarray] | None:
    """Outputs of several compiled boosters (a sequence of :class:`CompiledTrees` with the
    same ``layout``) on the rows of ``X`` (float64 NaN = missing), as float64 arrays in
    order; None if a row holds a value the compiled code would read as missing (then
    call the library).

    The rows are converted once into one tl2cgen matrix, which each booster reads in one
    call of tl2cgen's runtime: its batch loop calls, row by row, the same generated
    ``predict`` as :func:`compiled_outputs`, so the answers are the same bit for bit.
    """
    _, tl2cgen = _modules()
    entry = trees[0]._entry
    data = np.ascontiguousarray(X, dtype=entry)
    # as in compiled_outputs: a double whose first 4 bytes read as the int -1 would be
    # read as "missing"
    if entry is np.float64 and (data.view(np.int32)[:, ::2] == -1).any():
        return None
    dtype = "float32" if entry is np.float32 else "float64"
    matrix = tl2cgen.DMatrix(data, dtype=dtype, missing=np.nan)
    return [
        np.asarray(
            t._predictor().predict(matrix, pred_margin=bool(t._margin)), dtype=np.float64
        ).reshape(-1)
        for t in trees
    ]


#: Per thread: the row buffers, by layout (row length, entry and leaf types).
_ROWS = threading.local()


def _row_state(layout: tuple[int, Any, Any]) -> Any:
    states = getattr(_ROWS, "states", None)
    if states is None:
        states = _ROWS.states = {}
    state = states.get(layout)
    if state is None:
        n, entry, leaf = layout
        data = np.zeros(n, dtype=entry)
        # union Entry {int missing; <float|double> fvalue; ...}: the int is the first
        # 4 bytes of each entry (little or big endian alike)
        missing = data.view(np.int32)[:: data.itemsize // 4]
        out = np.zeros(1, dtype=leaf)
        state = states[layout] = (data, missing, out, data.ctypes.data, out.ctypes.data)
    return state


def compiled_outputs(trees: Any, x: np.ndarray) -> list[float] | None:
    """Outputs of several compiled boosters (a sequence of :class:`CompiledTrees` with
    the same ``layout``) on one row ``x`` (float64 NaN = missing), in order; None if the
    row holds a value the compiled code would read as missing (then call the library).

    The row is written once into the buffer they all read (the generated ``predict``
    only reads it), then each library is called in turn: the answers are those of one
    call per booster, bit for bit.
    """
    data, missing, out, data_ptr, out_ptr = _row_state(trees[0].layout)
    data[:] = x
    # a float32 whose 4 bytes read as the int -1 is a NaN; a double can hold them in
    # its first 4 bytes and would be read as "missing": let the library answer
    if trees[0]._entry is np.float64 and (missing == -1).any():
        return None
    missing[np.isnan(x)] = -1
    values = []
    for t in trees:
        out[0] = 0.0
        t._fn(data_ptr, t._margin, out_ptr)
        values.append(float(out[0]))
    return values
