"""The scikit-learn feature pipeline: validated records -> model matrix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

from spinerisk.features._clinical import ClinicalFeatures
from spinerisk.schema import Schema

__all__ = ["MIN_SPLINE_VALUES", "make_feature_pipeline"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _saved_as_features(func: _F) -> _F:
    """Keep the name a saved bundle records for ``func``: ``spinerisk.features.<name>``.

    A fitted pipeline holds these functions; skops saves a function by its module and
    name, and the bundle's trusted types list them under ``spinerisk.features`` (where
    they lived before this module existed). Bundles therefore stay byte-identical and
    old ones keep loading; ``spinerisk.features`` re-exports each of them.
    """
    func.__module__ = "spinerisk.features"
    return func


@_saved_as_features
def _feature_name(transformer: str, feature: str) -> str:
    """Readable output names: ``hu_l1_missing`` instead of ``missingindicator_hu_l1``."""
    if feature.startswith("missingindicator_"):
        return feature[len("missingindicator_") :] + "_missing"
    return feature


#: Fewest distinct training values for a number to get spline terms; fewer (flags, small
#: counts) keep one straight-line term.
MIN_SPLINE_VALUES = 10


@_saved_as_features
def _continuous_columns(X: object) -> list[str]:
    """Numeric columns with at least :data:`MIN_SPLINE_VALUES` distinct values (at fit)."""
    return [
        str(c)
        for c in X.columns  # type: ignore[attr-defined]
        if X[c].dtype.kind == "f" and X[c].nunique() >= MIN_SPLINE_VALUES  # type: ignore[index]
    ]


@_saved_as_features
def _other_numbers(X: object) -> list[str]:
    """Numeric columns that keep a straight-line term (complement of the spline columns)."""
    continuous = set(_continuous_columns(X))
    return [
        str(c)
        for c in X.columns  # type: ignore[attr-defined]
        if X[c].dtype.kind in "biuf" and str(c) not in continuous  # type: ignore[index]
    ]


@_saved_as_features
def _one_hot_name(field: str, category: object) -> str:
    if category is None or (isinstance(category, float) and category != category):
        category = "missing"  # the NaN category OneHotEncoder learns for missing values
    return f"{field}={category}"


def make_feature_pipeline(
    schema: Schema | None = None,
    *,
    encoding: Literal["onehot", "native"] = "onehot",
    include_treatment: bool = True,
    impute: bool | None = None,
    scale: bool | None = None,
    spline_knots: int = 0,
    fields: tuple[str, ...] | None = None,
) -> Pipeline:
    """Build the scikit-learn feature pipeline for a clinical-record schema.

    Steps: :class:`ClinicalFeatures` (baseline fields only, derived clinical features),
    then encoding. Outcome and follow-up fields never enter: only fields whose role is
    ``feature`` (and ``treatment``, if included) are read. Everything learned (medians,
    scales, category sets) is fitted on the training rows only, as in any scikit-learn
    pipeline.

    Parameters
    ----------
    schema : Schema or None, default=None
        None means :data:`spinerisk.schema.SPINE_SCHEMA`.
    encoding : {"onehot", "native"}, default="onehot"
        ``"onehot"`` for linear and Cox models: median imputation with missing
        indicators, one-hot categories (a missing category is its own column;
        a category never seen in training gives all zeros) and standardised numbers.
        ``"native"`` for gradient-boosted trees (XGBoost with
        ``enable_categorical=True``, LightGBM): missing numbers stay NaN for the
        booster's own missing-value handling, plus missing indicators; categories
        stay pandas ``category`` with the schema's fixed code list, so prediction never
        meets a category the booster did not know.
    include_treatment : bool, default=True
        Keep treatment fields (confounded by indication; not causal).
    impute : bool or None, default=None
        Median-impute numbers; None means True for ``"onehot"``, False for ``"native"``.
    scale : bool or None, default=None
        Standardise numbers; None means True for ``"onehot"``, False for ``"native"``.
    spline_knots : int, default=0
        ``"onehot"`` only. With ``k >= 3``, every continuous number (at least
        :data:`MIN_SPLINE_VALUES` distinct training values) enters as a cubic B-spline
        basis with ``k`` knots at training quantiles (``age_years_sp_0`` ...), so that a
        linear or Cox model can bend with the data, as restricted cubic splines do in
        clinical prediction models; flags and small counts keep one straight-line
        term. Beyond the training range the splines continue as straight lines. ``0``
        keeps one straight-line term per number.

    fields : tuple of str or None, default=None
        Predictor fields (an endpoint's declared list); None means every field whose
        role is ``feature`` (and ``treatment``, if included).

    Returns
    -------
    Pipeline
        Unfitted; ``set_output(transform="pandas")`` is already applied, so the
        output is a DataFrame with readable names (``age_years``,
        ``t2_pattern=confined_high``, ``tscore_min_missing``).

    Examples
    --------
    >>> import spinerisk as sr
    >>> cohort = sr.validate(sr.make_spine_cohort(500, seed=0))
    >>> pipe = sr.make_feature_pipeline()
    >>> X = pipe.fit_transform(cohort)
    >>> X.shape[0], bool(X.notna().all().all())
    (500, True)
    >>> [c for c in X.columns if c.startswith("t2_pattern")][:2]
    ['t2_pattern=confined_high', 't2_pattern=confined_low']
    >>> sr.make_feature_pipeline(encoding="trees")
    Traceback (most recent call last):
    ...
    ValueError: encoding must be 'onehot' or 'native'; got encoding='trees'.
    """
    impute, scale = _check_options(encoding, impute, scale, spline_knots)
    numeric = _numeric_steps(spline_knots, impute=impute, scale=scale)
    if encoding == "onehot":
        categorical: Any = OneHotEncoder(
            handle_unknown="ignore",
            sparse_output=False,
            feature_name_combiner=_one_hot_name,
        )
    else:
        categorical = "passthrough"
    numbers = make_column_selector(dtype_exclude="category")
    categories = make_column_selector(dtype_include="category")
    encode = ColumnTransformer(
        [("num", numeric, numbers), ("cat", categorical, categories)],
        verbose_feature_names_out=_feature_name,
    )
    pipe = Pipeline(
        [
            (
                "clinical",
                ClinicalFeatures(schema, include_treatment=include_treatment, fields=fields),
            ),
            ("encode", encode),
        ]
    )
    return pipe.set_output(transform="pandas")


def _check_options(
    encoding: str, impute: bool | None, scale: bool | None, spline_knots: int
) -> tuple[bool, bool]:
    """Check the encoding options; ``impute`` and ``scale`` with None resolved."""
    if encoding not in ("onehot", "native"):
        raise ValueError(f"encoding must be 'onehot' or 'native'; got encoding={encoding!r}.")
    impute = (encoding == "onehot") if impute is None else impute
    scale = (encoding == "onehot") if scale is None else scale
    if not isinstance(spline_knots, int) or isinstance(spline_knots, bool) or spline_knots < 0:
        raise ValueError(f"spline_knots must be 0 or an integer >= 3; got {spline_knots!r}.")
    if spline_knots and (spline_knots < 3 or encoding != "onehot" or not impute):
        raise ValueError(
            "spline_knots needs encoding='onehot' with imputation and at least 3 knots; got "
            f"spline_knots={spline_knots}, encoding={encoding!r}, impute={impute}."
        )
    return impute, scale


def _missing_indicator() -> MissingIndicator:
    # a value missing at prediction time where training had none is normal for a new
    # record: no error, no indicator column for it
    return MissingIndicator(features="missing-only", error_on_new=False)


def _numeric_steps(spline_knots: int, *, impute: bool, scale: bool) -> Pipeline:
    """Numbers: spline basis, median imputation or pass-through, with missing indicators;
    then standardised if ``scale``."""
    steps: list[Any]
    if spline_knots:
        spline = make_pipeline(
            SimpleImputer(strategy="median"),
            SplineTransformer(
                n_knots=spline_knots,
                degree=3,
                knots="quantile",
                extrapolation="linear",
                include_bias=False,
            ),
        )
        steps = [
            ColumnTransformer(
                [
                    ("spline", spline, _continuous_columns),
                    ("value", SimpleImputer(strategy="median"), _other_numbers),
                    ("missing", _missing_indicator(), slice(None)),
                ],
                verbose_feature_names_out=_feature_name,
            )
        ]
    elif impute:
        steps = [SimpleImputer(strategy="median", add_indicator=True)]
    else:
        steps = [
            ColumnTransformer(
                [
                    ("value", "passthrough", slice(None)),
                    ("missing", _missing_indicator(), slice(None)),
                ],
                verbose_feature_names_out=_feature_name,
            )
        ]
    if scale:
        steps.append(StandardScaler())
    return make_pipeline(*steps)
