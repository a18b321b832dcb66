"""Formats: read the numbers and dates of a CSV column the way they are written, or say why not.

A CSV holds text. `73,42` is 73.42 in a German export and 7342 to a reader that takes the comma
for a thousands separator; `01/02/2016` is 1 February or 2 January; `20160115` is a date, not
20 million nanoseconds after 1970. Each column's format is decided from ALL its values: a
format that every value fits and that no other reading shares is used; when two readings give
different numbers or dates and nothing in the file tells them apart, the error names the column,
a line and the option that settles it (`data.decimal`, `data.date_format`).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from lstmlab.errors import LstmlabError
from lstmlab.pipeline.checks import DECIMALS

# Beyond this magnitude squared errors summed over millions of rows overflow float64 (1e308):
# the metrics would be inf and the run would fail after it started. Prices never come close.
MAX_ABS_VALUE = 1e100

_CURRENCY = r"[$€£¥]"
_GROUP_SPACE = r"[ '\u00a0\u202f]"  # thousands separators that never mean a decimal point


def _number_pattern(decimal: str) -> re.Pattern[str]:
    """A number with `decimal` as decimal point, optionally grouped by the other mark or spaces."""
    point, group = re.escape(decimal), re.escape("," if decimal == "." else ".")
    integer = rf"(?:\d{{1,3}}(?:{group}\d{{3}})+|\d{{1,3}}(?:{_GROUP_SPACE}\d{{3}})+|\d+)"
    exponent = r"(?:[eE][+-]?\d+)?" if decimal == "." else ""
    return re.compile(rf"[+-]?(?:{integer}(?:{point}\d*)?|{point}\d+){exponent}")


PATTERNS = {decimal: _number_pattern(decimal) for decimal in DECIMALS}
NON_FINITE = re.compile(r"[+-]?(?:inf|infinity)", re.IGNORECASE)


def lines_text(lines: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(line)) for line in lines[:limit])
    return shown + (f" and {len(lines) - limit} more" if len(lines) > limit else "")


def _clean(values: pd.Series) -> pd.Series:
    """Text without surrounding spaces and currency signs ("$1,234.50", "73,42 €")."""
    return values.str.strip().str.replace(rf"^{_CURRENCY}\s*|\s*{_CURRENCY}$", "", regex=True)


def _fits(text: pd.Series, decimal: str) -> np.ndarray:
    fits: np.ndarray = text.str.fullmatch(PATTERNS[decimal]).to_numpy(dtype=bool)
    return fits


def decide_decimal(columns: dict[str, pd.Series], lines: np.ndarray, where: str, decimal: str | None) -> str:
    """The decimal mark of the file's number columns: `decimal` when given, else what the values
    say. One mark for the whole file: a column that could go either way (1.234) is read like
    the columns that cannot."""
    if decimal is not None:
        return decimal
    settled: dict[str, str] = {}  # column -> the one mark all its values fit
    ambiguous: dict[str, tuple[int, str]] = {}  # column -> (line, value) the two marks read differently
    for name, values in columns.items():
        text = _clean(values.dropna())
        if text.empty:
            continue
        fits = {mark: _fits(text, mark) for mark in DECIMALS}
        marks = [mark for mark in DECIMALS if fits[mark].all()]
        if len(marks) == 1:
            settled[name] = marks[0]
        elif len(marks) == 2:
            # Both fit: plain integers, 1,234 or 1.234. Only a comma makes the reading doubtful:
            # with dots alone the CSV convention (the one pandas reads) is the decimal point.
            commas = np.flatnonzero(text.str.contains(",", regex=False).to_numpy())
            if len(commas):
                ambiguous[name] = (lines[values.index.get_indexer(text.index[commas[:1]])[0]], text.iloc[commas[0]])
    if len(set(settled.values())) > 1:
        dot = next(n for n, m in settled.items() if m == ".")
        comma = next(n for n, m in settled.items() if m == ",")
        raise LstmlabError(
            f"{where}: column {dot!r} writes numbers with a decimal point and column {comma!r} with "
            "a decimal comma; write every number column one way"
        )
    if settled:
        return next(iter(settled.values()))
    if ambiguous:
        name, (line, value) = next(iter(ambiguous.items()))
        raise LstmlabError(
            f"{where}: column {name!r} line {line}: {value!r} reads as a thousands separator or a "
            "decimal comma and no value in the file tells which; set data.decimal=. or data.decimal=,"
        )
    return "."


def parse_numbers(values: pd.Series, name: str, lines: np.ndarray, where: str, decimal: str) -> np.ndarray:
    """Floats of a text column written with `decimal` as decimal mark; NaN where empty.

    By hand rather than read_csv(decimal=, thousands=): those options hold for the whole file,
    and each column must first be checked against both readings (see decide_decimal)."""
    text = _clean(values.astype("string"))
    present = text.notna().to_numpy()
    fits = np.zeros(len(text), dtype=bool)
    fits[present] = _fits(text[present], decimal)
    bad = np.flatnonzero(present & ~fits)
    if len(bad):
        value = values.iloc[bad[0]]
        if NON_FINITE.fullmatch(str(value).strip()):
            raise LstmlabError(
                f"{where}: column {name!r} line {lines[bad[0]]}: {value!r} is not a finite number; "
                "a price table needs finite values (leave the cell empty for a missing one)"
            )
        other = "," if decimal == "." else "."
        hint = (f"; read with {decimal!r} as decimal mark, data.decimal={other} would read it"
                if PATTERNS[other].fullmatch(str(value).strip()) else "")
        raise LstmlabError(
            f"{where}: column {name!r} has values that are not numbers at lines "
            f"{lines_text(lines[bad])} (e.g. {value!r}){hint}"
        )
    group = "," if decimal == "." else r"\."
    plain = text.str.replace(rf"{group}|{_GROUP_SPACE}", "", regex=True)
    if decimal == ",":
        plain = plain.str.replace(",", ".", regex=False)
    with np.errstate(over="ignore"):
        numbers: np.ndarray = pd.to_numeric(plain, errors="coerce").to_numpy(dtype=float)
    huge = np.flatnonzero(~(np.abs(numbers) <= MAX_ABS_VALUE) & present)
    if len(huge):
        raise LstmlabError(
            f"{where}: column {name!r} line {lines[huge[0]]}: {values.iloc[huge[0]]!r} is beyond "
            f"±{MAX_ABS_VALUE:g}, too large to compute errors with; rescale the column"
        )
    return numbers


# --- dates --------------------------------------------------------------------------------

_YYYYMMDD = re.compile(r"\d{8}")
_INTEGER = re.compile(r"\d+(?:\.0*)?")
_NUMERIC_DATE = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})")
# An ISO timestamp with its UTC offset; the offset is dropped (see parse_dates).
_ISO_OFFSET = re.compile(r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)")
EXCEL = "excel"
EXCEL_EPOCH = "1899-12-30"  # day 0 of Excel's 1900 date system (Windows); serial 1 = 1900-01-01


def parse_dates(values: pd.Series, name: str, lines: np.ndarray, where: str, date_format: str | None) -> pd.DatetimeIndex:
    """Dates of a text column: by `date_format` (a strftime format or "excel") or as written.

    Recognised without options: ISO dates and timestamps (UTC offsets dropped: the date as
    written is the trading day; converting 00:00+02:00 to UTC would move it to the day before),
    YYYYMMDD integers, d/m/y or m/d/y when a day above 12 shows which, and what pandas infers
    from the first value and then holds every row to (e.g. "Jan 4, 2016", "04-Jan-2016")."""
    text = values.astype("string").str.strip()
    missing = np.flatnonzero(text.isna().to_numpy())
    if len(missing):
        raise LstmlabError(f"{where}: column {name!r} has no date at lines {lines_text(lines[missing])}; "
                           "fill in the dates or remove those lines")
    how = date_format or _detect_date_format(text, name, lines, where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas' "could not infer format" chatter
            if how == EXCEL:
                serial = pd.to_numeric(text, errors="coerce")
                dates = pd.to_datetime(serial, unit="D", origin=EXCEL_EPOCH, errors="coerce")
            elif how == "iso":
                dates = pd.to_datetime(text.str.replace(_ISO_OFFSET.pattern + "$", r"\1", regex=True),
                                       format="ISO8601", errors="coerce")
            else:
                dates = pd.to_datetime(text, format=how, errors="coerce")
    except (ValueError, TypeError, OverflowError) as error:
        raise LstmlabError(f"{where}: column {name!r} cannot be read as dates ({str(error).splitlines()[0]}); "
                           "write them as YYYY-MM-DD or set data.date_format") from None
    index = pd.DatetimeIndex(dates)
    if index.tz is not None:  # a format with %z: keep the local date, as for ISO offsets
        index = index.tz_localize(None)
    bad = np.flatnonzero(index.isna())
    if len(bad):
        read_as = {EXCEL: "Excel serial days", "iso": "ISO dates", None: "dates"}.get(how, f"dates in the format {how!r}")
        raise LstmlabError(
            f"{where}: column {name!r} has values that are not {read_as} at lines {lines_text(lines[bad])} "
            f"(e.g. {values.iloc[bad[0]]!r}); fix or remove those lines"
            + ("" if date_format or len(bad) < len(index) else ", or give their format: data.date_format=%d.%m.%Y (say)")
        )
    return index.rename("Date")


def _detect_date_format(text: pd.Series, name: str, lines: np.ndarray, where: str) -> str | None:
    """The format every value of the column is written in; None lets pandas infer it."""
    if text.str.fullmatch(_YYYYMMDD).all():
        return "%Y%m%d"
    if text.str.fullmatch(_INTEGER).all():
        raise LstmlabError(
            f"{where}: column {name!r} holds numbers such as {text.iloc[0]!r} (line {lines[0]}), not dates: "
            f"for Excel serial day numbers set data.date_format={EXCEL} (1900 date system); "
            "otherwise write the dates as YYYY-MM-DD or YYYYMMDD"
        )
    if text.str.match(r"\d{4}-\d{2}-\d{2}").all():
        return "iso"
    parts = text.str.extract(_NUMERIC_DATE.pattern + "$")
    if parts[0].notna().all():
        return _day_or_month_first(parts, text, name, lines, where)
    return None


def _day_or_month_first(parts: pd.DataFrame, text: pd.Series, name: str, lines: np.ndarray, where: str) -> str:
    """%d/%m/%Y or %m/%d/%Y for dates such as 13/02/2016, by which field goes above 12."""
    first, second = parts[0].astype(int).to_numpy(), parts[2].astype(int).to_numpy()
    sep, year = parts[1].iloc[0], "%Y" if len(parts[3].iloc[0]) == 4 else "%y"
    day_first, month_first = f"%d{sep}%m{sep}{year}", f"%m{sep}%d{sep}{year}"
    if (first > 12).any() and (second > 12).any():
        a, b = lines[np.argmax(first > 12)], lines[np.argmax(second > 12)]
        raise LstmlabError(
            f"{where}: column {name!r} has day-first dates (line {a}) and month-first dates (line {b}); "
            "write every date one way, best as YYYY-MM-DD"
        )
    if (first > 12).any():
        return day_first
    if (second > 12).any():
        return month_first
    raise LstmlabError(
        f"{where}: column {name!r}: dates such as {text.iloc[0]!r} (line {lines[0]}) "
        f"read day-first or month-first and no day above 12 tells which; set "
        f"data.date_format='{day_first}' or data.date_format='{month_first}'"
    )
