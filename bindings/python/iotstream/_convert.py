"""Conversions between Python/pandas values and what the native module takes or returns."""
from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import InvalidArgumentError

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)

TimestampLike = Any  # datetime | pandas.Timestamp | numpy.datetime64 | int (epoch ms) | ISO-8601 str


def to_epoch_ms(value: TimestampLike, what: str = "timestamp") -> int:
    """Epoch milliseconds of a timestamp. Naive datetimes and ISO texts without a zone are UTC
    (as the seed's utcnow().isoformat()); integers are already epoch milliseconds."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a datetime, ISO-8601 text or epoch milliseconds, got a bool")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise InvalidArgumentError(f"{what} is NaT")
        return int(value.astype("datetime64[ms]").astype(np.int64))
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise InvalidArgumentError(f"{what} {value!r} is not ISO-8601") from None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    raise TypeError(f"{what} must be a datetime, ISO-8601 text or epoch milliseconds, "
                    f"got {type(value).__name__}")


def timestamps_column(values: Any, what: str) -> np.ndarray:
    """A contiguous int64 array of epoch milliseconds from a pandas/numpy column."""
    import pandas as pd

    series = pd.Series(values) if not isinstance(values, pd.Series) else values
    if pd.api.types.is_integer_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        if series.isna().any():
            raise InvalidArgumentError(f"{what} is missing in row {int(np.flatnonzero(series.isna())[0])}")
        return np.ascontiguousarray(series.to_numpy(dtype=np.int64))
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        try:
            series = pd.to_datetime(series, utc=True)
        except (ValueError, TypeError) as e:
            raise InvalidArgumentError(f"{what} cannot be read as timestamps: {e}") from None
    elif getattr(series.dt, "tz", None) is None:
        series = series.dt.tz_localize("UTC")
    if series.isna().any():
        raise InvalidArgumentError(f"{what} is missing (NaT) in row {int(np.flatnonzero(series.isna())[0])}")
    ns = series.dt.tz_convert("UTC").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return np.ascontiguousarray(np.floor_divide(ns, 1_000_000))


def frame_columns(frame: Any, names: Sequence[str], paths: Sequence[str]) -> List[Tuple[str, str, Any]]:
    """(path, kind, values) for the native producer: kind 'f' float64 (NaN = absent), 'i' int64,
    'b' bool, 's' str objects (None/NaN = absent)."""
    import pandas as pd

    columns: List[Tuple[str, str, Any]] = []
    for name, path in zip(names, paths):
        series = frame[name]
        dtype = series.dtype
        if pd.api.types.is_bool_dtype(dtype) and not series.isna().any():
            columns.append((path, "b", np.ascontiguousarray(series.to_numpy(dtype=np.uint8))))
        elif pd.api.types.is_integer_dtype(dtype) and not series.isna().any():
            columns.append((path, "i", np.ascontiguousarray(series.to_numpy(dtype=np.int64))))
        elif pd.api.types.is_numeric_dtype(dtype):
            # Floats, and nullable integers/bools with gaps: NaN marks a reading without the field.
            columns.append((path, "f", np.ascontiguousarray(series.to_numpy(dtype=np.float64, na_value=np.nan))))
        elif pd.api.types.is_string_dtype(dtype) or dtype == object:
            values = series.tolist()
            bad = next((i for i, v in enumerate(values) if v is not None and not isinstance(v, (str, float))), None)
            if bad is not None:
                raise InvalidArgumentError(
                    f"column {name!r} row {bad}: only numbers, bools and strings can be sent, "
                    f"got {type(values[bad]).__name__}")
            columns.append((path, "s", values))
        else:
            raise InvalidArgumentError(f"column {name!r} has dtype {dtype}, which has no JSON form; "
                                       "convert it or leave it out with columns=[...]")
    return columns


def data_json(data: Any, what: str) -> str:
    """JSON text of a reading's data: a mapping, or text that is already a JSON object."""
    if isinstance(data, (str, bytes)):
        return data.decode() if isinstance(data, bytes) else data
    if isinstance(data, Mapping):
        try:
            return json.dumps(data, allow_nan=False, separators=(",", ":"), default=_json_default)
        except ValueError as e:
            raise InvalidArgumentError(f"{what}: {e} (JSON has no NaN or infinity)") from None
    raise TypeError(f"{what} must be a dict or JSON text, got {type(data).__name__}")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def flatten(obj: Mapping[str, Any], prefix: str = "", out: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """{"location": {"lat": 1}} -> {"location.lat": 1}."""
    out = {} if out is None else out
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flatten(value, name + ".", out)
        else:
            out[name] = value
    return out


def envelope_row(value: str) -> Dict[str, Any]:
    """One DataFrame row from a record value: an envelope's data (with the envelope's
    sensor_id, timestamp and message_id), a plain JSON object flattened, or the raw text."""
    try:
        obj = json.loads(value)
    except ValueError:
        return {"value": value}
    if not isinstance(obj, dict):
        return {"value": value}
    data = obj.get("data")
    if isinstance(data, dict) and "sensor_id" in obj:
        row = {"sensor_id": obj["sensor_id"]}
        flatten(data, "", row)
        row["timestamp"] = obj.get("timestamp")
        row["message_id"] = obj.get("message_id")
        return row
    return flatten(obj)


def rows_to_frame(rows: Iterable[Dict[str, Any]], time_columns: Sequence[str] = ("timestamp",),
                  epoch_s_columns: Sequence[str] = (), epoch_ms_columns: Sequence[str] = ()) -> Any:
    """A DataFrame with time columns typed as UTC datetimes."""
    import pandas as pd

    return _typed_times(pd.DataFrame(list(rows)), time_columns, epoch_s_columns, epoch_ms_columns)


def columns_to_frame(columns: Sequence[Tuple[str, Any]], time_columns: Sequence[str] = ("timestamp",),
                     epoch_s_columns: Sequence[str] = (), epoch_ms_columns: Sequence[str] = ()) -> Any:
    """A DataFrame from the native module's decoded columns ``[(name, numpy array or list), ...]``
    (record values decoded in C++ as :func:`envelope_row` decodes one), time columns typed as
    :func:`rows_to_frame` types them: the same frame as ``rows_to_frame`` of those rows."""
    import pandas as pd

    frame = pd.DataFrame(dict(columns)) if columns else pd.DataFrame()
    return _typed_times(frame, time_columns, epoch_s_columns, epoch_ms_columns)


def _typed_times(frame: Any, time_columns: Sequence[str], epoch_s_columns: Sequence[str],
                 epoch_ms_columns: Sequence[str]) -> Any:
    import pandas as pd

    for name in time_columns:
        if name in frame.columns:
            frame[name] = pd.to_datetime(frame[name], utc=True)
    for name in epoch_s_columns:
        if name in frame.columns:
            frame[name] = pd.to_datetime(frame[name], unit="s", utc=True)
    for name in epoch_ms_columns:
        if name in frame.columns:
            frame[name] = pd.to_datetime(frame[name], unit="ms", utc=True)
    return frame
