"""The portable canonical text (README, "Two engines: the portable canonical text") computed in process,
over Arrow columns as each side's reader hands them over.

It is written from the README's rules, not from the loader's casts (``source.py``): a value the loader
converted wrongly reads differently here than its source and is caught. Each column's kind (integer,
decimal, float, timestamp, timestamptz, date, boolean, binary, text) is the sentinel dialect's, from the
type the side's catalog declares, so the SQL canonical text and this one classify a column alike.

What is hashed is each kind's canonical value (``canonical_values``: an int64, a date, a bool or text),
one-to-one with its canonical text (``canonical_text``, what the tests hold against the README's table).
Vectorised with pyarrow compute; floats and binaries (a formatted double, an MD5) go value by value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

NULL_TEXT = "N"
FLOAT_DIGITS = 15  # PORTABLE_FLOAT_DIGITS of the sentinel's dialects


def plain(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Extension types as their storage (ADBC's PostgreSQL numeric: its text), a uuid as its text,
    dictionaries decoded, chunks combined."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if isinstance(array.type, pa.UuidType):
        return pa.array([None if u is None else str(u) for u in array.to_pylist()], pa.string())
    if isinstance(array.type, pa.BaseExtensionType):
        array = array.storage
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type):
        array = array.cast(pa.string())
    return array


def canonical_values(
    array: pa.Array | pa.ChunkedArray,
    kind: str,
    *,
    timestamp_precision: int = 6,
    float_digits: int = FLOAT_DIGITS,
) -> pa.Array:
    """The canonical form that is hashed: one Arrow type per kind, whatever type the side's reader gave
    (int64 for integers, int64 microseconds for timestamps, date32, bool, and text for the other kinds);
    NULL stays NULL. Each is one-to-one with the kind's canonical text (``canonical_text``), and typed values
    hash for less than their text."""
    array = plain(array)
    if kind == "integer":
        return array.cast(pa.int64())  # a digits text (an oid the loader reads as text) parses alike
    if kind == "decimal":
        return _decimal(array)
    if kind == "float":
        return _float(array, float_digits)
    if kind in ("timestamp", "timestamptz"):
        return _epoch(array, timestamp_precision)
    if kind == "date":
        return array.cast(pa.date32())
    if kind == "boolean":
        return pc.equal(array, "true") if pa.types.is_string(array.type) else array.cast(pa.bool_())
    if kind == "binary":
        return pa.array([None if b is None else hashlib.md5(b).hexdigest() for b in array.to_pylist()], pa.string())
    return array if pa.types.is_string(array.type) else array.cast(pa.string())


def canonical_text(values: pa.Array, kind: str) -> pa.Array:
    """The README's canonical text of canonical values: NULL is ``N``, free text ``<characters>:<text>``."""
    if kind == "text":
        text = pc.binary_join_element_wise(pc.utf8_length(values).cast(pa.string()), values, ":")
    else:
        text = values.cast(pa.string())  # digits, 'YYYY-MM-DD', 'true' | 'false', or text already
    return pc.fill_null(text, NULL_TEXT)


def canonical(array: pa.Array | pa.ChunkedArray, kind: str, **options: int) -> pa.Array:
    """The canonical text of every value of ``array`` (a string array without nulls)."""
    return canonical_text(canonical_values(array, kind, **options), kind)


def _decimal(array: pa.Array) -> pa.Array:
    """Digits without trailing zeros nor a bare '.': '12.50' -> '12.5', '100.000' -> '100'."""
    if pa.types.is_decimal(array.type):
        if array.type.scale <= 0:
            return array.cast(pa.string())
        text = array.cast(pa.string())
        if array.type.scale > 6:  # Arrow writes 0 < |x| < 1e-6 as '1.000E-7': such values in Python
            text = _plain_notation(text)
        return pc.ascii_rtrim(pc.ascii_rtrim(text, "0"), ".")  # every value has its scale's '.'
    text = array if pa.types.is_string(array.type) else array.cast(pa.string())  # a driver's text: '12.50'
    trimmed = pc.ascii_rtrim(pc.ascii_rtrim(text, "0"), ".")
    return pc.if_else(pc.match_substring(text, "."), trimmed, text)


def _plain_notation(text: pa.Array) -> pa.Array:
    if not pc.any(pc.match_substring(text, "E")).as_py():
        return text
    from decimal import Decimal

    return pa.array(
        [None if t is None else (format(Decimal(t), "f") if "E" in t else t) for t in text.to_pylist()], pa.string()
    )


def _float(array: pa.Array, digits: int) -> pa.Array:
    """'0', or the value as a double in scientific notation at ``digits`` significant digits."""
    values = array.cast(pa.float64()).to_pylist()
    spec = f".{digits - 1}e"
    return pa.array([None if v is None else ("0" if v == 0 else format(v, spec)) for v in values], pa.string())


def _epoch(array: pa.Array, precision: int) -> pa.Array:
    """Microseconds since 1970-01-01 00:00 UTC (a timestamp without zone: its wall time as UTC), divided
    toward zero down to ``precision`` digits of the second."""
    unit_tz = array.type.tz if pa.types.is_timestamp(array.type) else None
    micros = array.cast(pa.timestamp("us", unit_tz), safe=False).cast(pa.int64())
    if precision < 6:
        micros = pc.divide(micros, 10 ** (6 - precision))  # integer division truncates toward zero
    return micros


def canonical_frame(
    batch: pa.RecordBatch | pa.Table,
    kinds: Sequence[tuple[str, str]],
    *,
    timestamp_precision: int = 6,
    float_digits: int = FLOAT_DIGITS,
) -> pl.DataFrame:
    """One column of canonical values per ``(name, kind)``, in that order."""
    return pl.from_arrow(
        pa.table(
            [
                canonical_values(
                    batch.column(name), kind, timestamp_precision=timestamp_precision, float_digits=float_digits
                )
                for name, kind in kinds
            ],
            names=[name for name, _ in kinds],
        )
    )
