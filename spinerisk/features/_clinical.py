"""Baseline feature selection and derived clinical features.

:class:`ClinicalFeatures` turns validated records into the model's raw feature frame:
it keeps only fields known at the index fracture (never an outcome or follow-up field),
and adds the derived features the literature uses (spine region and thoracolumbar
junction from level, Genant grade from height loss, osteoporosis from T-score or CT
attenuation, age bands, BMI from height and weight).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from spinerisk.schema._spec import Schema
from spinerisk.schema.default import (
    AGE_BANDS,
    HU_OSTEOPOROSIS,
    SPINE_SCHEMA,
    TSCORE_OSTEOPOROSIS,
    resolve_schema,
)

__all__ = [
    "AGE_BANDS",
    "DERIVED_FROM",
    "HU_OSTEOPOROSIS",
    "TSCORE_OSTEOPOROSIS",
    "ClinicalFeatures",
    "field_of_feature",
]

#: Derived feature of the default schema -> the clinical field(s) it is computed from
#: (the field it is explained as first). The declarations live in the schema
#: (:attr:`spinerisk.schema.Schema.derived`); this is a read-only summary of them.
DERIVED_FROM: dict[str, tuple[str, ...]] = {
    d.name: tuple(
        dict.fromkeys(
            [SPINE_SCHEMA.field_of(d.name), *(SPINE_SCHEMA.field_of(i) for i in d.inputs)]
        )
    )
    for d in SPINE_SCHEMA.derived
}


def field_of_feature(name: str, schema: Schema | None = None) -> str:
    """Clinical field an output feature name comes from.

    One-hot columns (``t2_pattern=confined_high``), missing indicators
    (``tscore_min_missing``) and spline terms (``age_years_sp_0``) map back to their
    field; derived features map to the field the schema declares for them
    (:meth:`spinerisk.schema.Schema.field_of`).

    Parameters
    ----------
    name : str
        Output feature name.
    schema : Schema or None, default=None
        The schema whose derived features apply; None means
        :data:`spinerisk.schema.SPINE_SCHEMA`.

    Examples
    --------
    >>> field_of_feature("t2_pattern=confined_high"), field_of_feature("hu_l1_missing")
    ('t2_pattern', 'hu_l1')
    >>> field_of_feature("tlj"), field_of_feature("age_years_sp_2")
    ('level', 'age_years')
    """
    base = name.split("=", 1)[0]
    spline = re.fullmatch(r"(.+)_sp_\d+", base)
    if spline:
        base = spline.group(1)
    if base.endswith("_missing"):
        base = base[: -len("_missing")]
    return resolve_schema(schema).field_of(base)


def _as_float(col: pd.Series) -> pd.Series:
    """Numbers and flags as float64 with NaN for missing; anything unparsable is NaN."""
    if (
        col.dtype.kind in "biuf"
        or pd.api.types.is_extension_array_dtype(col.dtype)
        and (pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype))
    ):  # already numeric (validated records): no detour through Python objects
        return pd.Series(col.to_numpy(dtype="float64", na_value=np.nan), index=col.index)
    return pd.to_numeric(col.astype(object), errors="coerce").astype(float)


class ClinicalFeatures(TransformerMixin, BaseEstimator):
    """Select baseline fields and add derived clinical features.

    Parameters
    ----------
    schema : Schema or None, default=None
        Schema describing the records; None means
        :data:`spinerisk.schema.SPINE_SCHEMA`.
    include_treatment : bool, default=True
        Keep fields with role ``treatment``. Treatment is confounded by indication:
        its attributions are not causal effects.
    derive : bool, default=True
        Add the schema's derived features (:attr:`spinerisk.schema.Schema.derived`;
        for the spine schema ``region``, ``tlj``, ``genant_grade0``, ``osteoporosis``,
        ``age_band``, and ``bmi`` filled from height and weight). Fields a derived
        feature ``replaces`` are dropped once it exists (``level``, ``height_cm`` and
        ``weight_kg`` for the spine schema).
    fields : tuple of str or None, default=None
        The predictor fields (an endpoint's declared list); None means every field
        whose role is ``feature`` (and ``treatment`` with ``include_treatment``).

    Attributes
    ----------
    fields_ : list of str
        Baseline schema fields used, in schema order.
    feature_names_out_ : ndarray of str
        Output column names.
    n_features_in_ : int
        Number of input columns seen in fit.
    feature_names_in_ : ndarray of str
        Input column names seen in fit.

    Examples
    --------
    >>> import spinerisk as sr
    >>> from spinerisk.features import ClinicalFeatures
    >>> cohort = sr.validate(sr.make_spine_cohort(300, seed=0))
    >>> Xf = ClinicalFeatures().fit_transform(cohort)
    >>> {"tlj", "region", "osteoporosis", "age_band"} <= set(Xf.columns)
    True
    >>> "nonunion" in Xf.columns or "fx_time_days" in Xf.columns
    False
    """

    def __init__(
        self,
        schema: Schema | None = None,
        *,
        include_treatment: bool = True,
        derive: bool = True,
        fields: tuple[str, ...] | None = None,
    ) -> None:
        self.schema = schema
        self.include_treatment = include_treatment
        self.derive = derive
        self.fields = fields

    def _schema(self) -> Schema:
        if self.schema is not None and not isinstance(self.schema, Schema):
            raise TypeError(f"schema must be a spinerisk Schema; got {type(self.schema).__name__}.")
        return resolve_schema(self.schema)

    def fit(self, X: pd.DataFrame, y: Any = None) -> ClinicalFeatures:
        """Record which baseline fields are present.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_fields)
            Validated records (see :func:`spinerisk.validate`).
        y : None
            Ignored.

        Returns
        -------
        self : ClinicalFeatures
        """
        schema = self._schema()
        X = self._check_frame(X)
        if len(X) == 0:
            raise ValueError("Found array with 0 sample(s); ClinicalFeatures needs records to fit.")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        if self.fields is not None:
            unknown = [f for f in self.fields if f not in schema]
            if unknown:
                raise ValueError(f"fields {unknown} are not fields of schema {schema.name!r}.")
            wanted = [f.name for f in schema if f.name in set(self.fields)]
        else:
            roles = ("feature", "treatment") if self.include_treatment else ("feature",)
            wanted = [f.name for f in schema.by_role(*roles)]
        self.fields_ = [f for f in wanted if f in X.columns]
        if not self.fields_:
            raise ValueError(
                f"None of the baseline fields of schema {schema.name!r} is in X (columns: "
                f"{list(X.columns)[:20]}). Map the extract onto the schema first."
            )
        self.feature_names_out_ = np.asarray(self._frame(X.head(1)).columns, dtype=object)
        return self

    def _check_frame(self, X: Any) -> pd.DataFrame:
        from scipy import sparse

        if sparse.issparse(X):
            raise TypeError(
                "ClinicalFeatures does not support sparse input: it needs a DataFrame of "
                "validated records."
            )
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                "ClinicalFeatures needs a DataFrame with schema field names (validated "
                f"records); got {type(X).__name__}."
            )
        return X

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Build the feature frame.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_fields)
            Records with the fields seen in fit (extra columns, outcomes included, are
            ignored).

        Returns
        -------
        DataFrame of shape (n_samples, n_features_out)
            Numbers and booleans as float (missing as NaN), categorical fields as
            pandas ``category`` with the schema's code list.
        """
        check_is_fitted(self, "fields_")
        return self._frame(self._check_frame(X))

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        schema = self._schema()
        absent = [f for f in self.fields_ if f not in X.columns]
        if absent:  # an absent optional column is missing data (validation checked the rest)
            required = [f for f in absent if schema[f].required or not schema[f].nullable]
            if required:
                raise ValueError(f"X lacks required field(s) {required} that were present in fit.")
            X = X.assign(**{f: pd.Series(pd.NA, index=X.index, dtype=object) for f in absent})
        out: dict[str, pd.Series] = {}
        for name in self.fields_:
            spec = schema[name]
            col = X[name]
            if spec.dtype == "category" or (spec.categories is not None and not spec.is_numeric):
                values = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype(object)
                out[name] = pd.Series(
                    pd.Categorical(values, categories=list(spec.categories or ())),
                    index=X.index,
                )
            elif spec.dtype in ("float", "int", "bool"):
                out[name] = _as_float(col)
            # string and date baseline fields carry no modelling signal as such
        frame = pd.DataFrame(out, index=X.index)
        if self.derive:
            frame = self._derive(frame)
        return frame

    def _derive(self, f: pd.DataFrame) -> pd.DataFrame:
        """Add the schema's derived features (:attr:`Schema.derived`), in order, to the
        frame built by :meth:`_frame` (which this owns: it is extended in place)."""
        for feature in derived_features(self._schema(), f.columns):
            f[feature.name] = feature.evaluate(f)
        # inputs replaced by a derived feature are dropped only when that feature exists
        consumed = [
            c
            for d in self._schema().derived
            if d.name in f.columns
            for c in d.replaces
            if c in f.columns
        ]
        return f.drop(columns=list(dict.fromkeys(consumed)))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output feature names.

        Parameters
        ----------
        input_features : ignored
            Present for scikit-learn compatibility.

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.input_tags.two_d_array = True
        return tags


def derived_features(schema: Schema, columns: Any) -> list[Any]:
    """The schema's derived features that apply to a frame with ``columns``, in order.

    A derived feature applies when all (``needs="all"``) or any (``needs="any"``) of
    the fields it reads are columns, or derived features that apply.
    """
    present = set(columns)
    out = []
    for d in schema.derived:
        inputs = [i in present for i in d.inputs]
        if all(inputs) if d.needs == "all" else any(inputs):
            out.append(d)
            present.add(d.name)
    return out


def derived_value(schema: Schema, records: pd.DataFrame, name: str) -> pd.Series | None:
    """A derived feature of ``schema`` computed on validated records (None when ``name``
    is not one, or the records lack what it needs); earlier derived features it reads
    are computed first, as :class:`ClinicalFeatures` computes them."""
    if name not in {d.name for d in schema.derived}:
        return None
    frame = records
    for d in derived_features(schema, records.columns):
        values = d.evaluate(frame)
        if d.name == name:
            return values
        frame = frame.assign(**{d.name: values})
    return None
