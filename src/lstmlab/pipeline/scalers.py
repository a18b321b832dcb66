"""Scalers as their fitted numbers: what a run records (`scaler.json`) and `forecast` reads back.

A pickle (joblib) runs code while it loads, and a run's artifacts can be written by anyone who
can write to the store. A fitted scikit-learn scaler is a class (one pipeline.checks allows),
its arguments and a few arrays, so it is saved as JSON and rebuilt from exactly those: loading
calls nothing that the file names but the allowed class's constructor.
"""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import numpy as np

from lstmlab.pipeline.checks import SCALERS

FORMAT = "lstmlab.scalers/1"
ROLES = ("features", "target")
# scikit-learn's fitted attributes: lower-case names ending in "_" (data_min_, scale_, n_features_in_).
_FITTED = re.compile(r"[a-z][a-z0-9_]*_")
# dtypes an array may have; "object" only for feature_names_in_ (strings).
_DTYPES = ("float16", "float32", "float64", "int32", "int64", "object")


def to_json(scalers: dict[str, Any]) -> str:
    """{"features": scaler, "target": scaler} as the text of scaler.json."""
    return json.dumps({"format": FORMAT, **{role: _describe(scalers[role]) for role in ROLES}}, indent=1)


def from_json(text: str | bytes) -> dict[str, Any]:
    """scaler.json's text back to fitted scalers; ValueError naming what is wrong with it."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"not an lstmlab scaler record (no \"format\": \"{FORMAT}\")")
    return {role: _rebuild(document.get(role), role) for role in ROLES}


def _describe(scaler: Any) -> dict[str, Any]:
    name = type(scaler).__name__
    if name not in SCALERS or not type(scaler).__module__.startswith("sklearn.preprocessing"):
        raise TypeError(f"{type(scaler).__module__}.{name} is not a scaler lstmlab records")
    fitted = {key: _encode(value) for key, value in vars(scaler).items() if _FITTED.fullmatch(key)}
    return {"class": name, "params": scaler.get_params(), "fitted": fitted}


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"dtype": str(value.dtype), "shape": list(value.shape), "values": value.ravel().tolist()}
    return value.item() if isinstance(value, np.generic) else value


def _rebuild(entry: object, role: str) -> Any:
    import sklearn.preprocessing
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict) or not isinstance(entry.get("fitted"), dict):
        raise ValueError(f"no {role} scaler (class, params, fitted)")
    name = entry.get("class")
    if name not in SCALERS:
        raise ValueError(f"the {role} scaler {name!r} is not one of {', '.join(sorted(SCALERS))}")
    params = {key: _parameter(key, value) for key, value in entry["params"].items()}
    try:
        scaler = getattr(sklearn.preprocessing, name)(**params)
    except TypeError as error:
        raise ValueError(f"the {role} scaler's params: {error}") from None
    for key, value in entry["fitted"].items():
        if not _FITTED.fullmatch(key):
            raise ValueError(f"{key!r} is not a fitted attribute of the {role} scaler")
        setattr(scaler, key, _decode(value, key))
    try:  # a record missing a number, or with arrays of the wrong shape, fails here, not later
        check_is_fitted(scaler)
        with warnings.catch_warnings():  # "X does not have valid feature names": a probe has none
            warnings.simplefilter("ignore", UserWarning)
            scaler.transform(np.zeros((1, int(scaler.n_features_in_))))
    except (ValueError, TypeError, AttributeError, IndexError) as error:  # bad state, by scaler and attribute
        raise ValueError(f"the {role} scaler does not transform: {error}") from None
    return scaler


def _parameter(key: str, value: object) -> object:
    """A constructor argument: JSON scalars, or a list of numbers (scikit-learn's tuples)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return tuple(value)
    raise ValueError(f"the scaler parameter {key}={value!r} is no number, flag or range")


def _decode(value: object, key: str) -> object:
    if not isinstance(value, dict):
        if value is None or isinstance(value, (bool, int, float)):
            return value
        raise ValueError(f"the fitted {key} is {type(value).__name__}, not a number or an array")
    dtype, shape, values = value.get("dtype"), value.get("shape"), value.get("values")
    if dtype not in _DTYPES or not isinstance(shape, list) or not isinstance(values, list):
        raise ValueError(f"the fitted {key} is not an array of numbers (dtype {dtype!r})")
    if dtype == "object" and not all(isinstance(v, str) for v in values):
        raise ValueError(f"the fitted {key} holds other things than names")
    try:
        return np.array(values, dtype=dtype).reshape(shape)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the fitted {key}: {error}") from None
