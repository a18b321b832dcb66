"""CSV table: open a user's price file safely and read its date and price columns as written.

Before pandas sees the file, a look at its size and first 64 KB refuses what cannot be a daily
price table (a directory, a device, binary data, a multi-GB file) in milliseconds and without
memory: parsing a 2 GB file would take about 8 times its size first. Then the separator (, ; tab
|) and the text encoding are decided from that sample, only the needed columns are read (as
text), and formats.py turns them into dates and numbers. Errors name the file line (header = 1).
"""

from __future__ import annotations

import csv
import io
import os
import stat
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from lstmlab.errors import LstmlabError, first_line
from lstmlab.pipeline import formats

DATE_COLUMN_NAMES = ("date", "datetime", "timestamp", "time", "day")
SEPARATORS = (",", ";", "\t", "|")
SAMPLE_BYTES = 64 * 1024
# Twenty years of daily OHLCV is about 1 MB; a file a thousand times that is not a price table
# (and parsing it would take several times its size in memory). data.max_file_mb raises it.
# conf/data/csv.yaml sets the same value; this one serves data configs without the key: a CSV
# given with `lstmlab forecast --data` to a run trained on sp500 or synthetic data.
DEFAULT_MAX_FILE_MB = 1024
# Signatures of files people pass by mistake, with what to do instead.
MAGIC = {
    b"PK\x03\x04": "an Excel workbook or ZIP archive: save the sheet as CSV",
    b"\x1f\x8b": "gzip-compressed: decompress it first",
    b"\xd0\xcf\x11\xe0": "an old Excel (.xls) workbook: save the sheet as CSV",
    b"%PDF": "a PDF document",
    b"\x89PDF": "a PDF document",
    b"PAR1": "a Parquet file: convert it to CSV",
}
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # Excel's "Unicode text" export: UTF-16, tab-separated


def read_price_csv(data_cfg: DictConfig) -> pd.DataFrame:
    """The date-indexed table of `data_cfg.path` with the target and feature columns as floats.

    Rows stay in file order (the caller sorts); a date that appears twice is an error, since
    which of the two rows is right cannot be known."""
    path = data_cfg.path  # set: pipeline.checks
    sample, size = _open_checked(path, float(data_cfg.get("max_file_mb") or DEFAULT_MAX_FILE_MB))
    encoding, text = _encoding(sample, path)
    separator, header = _dialect(text, path, truncated=size > len(sample))
    date_column = _date_column(header, data_cfg.get("date_column"), path)
    wanted = [data_cfg.target, *(data_cfg.get("features") or [])]
    numbers = list(dict.fromkeys(match_column(header, name, path, _key(name, data_cfg)) for name in wanted))
    leading = _leading_blank_lines(text)
    frame = _read_columns(path, separator, encoding, [date_column, *numbers], leading)
    blank = frame.isna().all(axis=1).to_numpy()  # blank lines were kept to keep line numbers
    lines = np.flatnonzero(~blank) + 2 + leading  # (a quoted value spanning lines would shift them)
    frame = frame[~blank].reset_index(drop=True)
    if frame.empty:
        raise LstmlabError(f"{path} has a header line but no data rows")
    dates = formats.parse_dates(frame[date_column], date_column, lines, path, data_cfg.get("date_format"))
    _refuse_repeated_dates(dates, lines, path)
    columns = {name: frame[name] for name in numbers}
    decimal = formats.decide_decimal(columns, lines, path, data_cfg.get("decimal"))
    values = {name: formats.parse_numbers(frame[name], name, lines, path, decimal) for name in numbers}
    return pd.DataFrame(values, index=dates)


def match_column(columns: Iterable[str], name: str, where: str, key: str) -> str:
    """The column called `name`, ignoring case and surrounding spaces."""
    by_lower = {str(c).strip().lower(): c for c in columns}
    try:
        return by_lower[str(name).strip().lower()]
    except KeyError:
        shown = ", ".join(map(str, columns))
        raise LstmlabError(f"{key}={name!r}: no such column in {where} (columns: {shown})") from None


def _key(name: str, data_cfg: DictConfig) -> str:
    return "data.target" if name == data_cfg.target else "data.features"


def _open_checked(path: str, max_mb: float) -> tuple[bytes, int]:
    """The first SAMPLE_BYTES of a regular, readable, non-empty, plausibly sized text file."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise LstmlabError(f"data file not found: {path}") from None
    except OSError as error:
        raise LstmlabError(f"cannot read data file {path}: {error.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise LstmlabError(f"data.path={path} is a directory; give a CSV file in it")
    if not stat.S_ISREG(info.st_mode):  # /dev/zero, a pipe: no size to check, maybe endless
        raise LstmlabError(f"data.path={path} is not a regular file; give a CSV file")
    if info.st_size == 0:
        raise LstmlabError(f"{path} is empty; a price table needs a header line and data rows")
    if info.st_size > max_mb * 2**20:
        raise LstmlabError(
            f"{path} is {info.st_size / 2**20:,.0f} MB, more than a daily price table can be "
            f"(limit data.max_file_mb={max_mb:g}); if it is one, raise the limit: data.max_file_mb=..."
        )
    try:
        with open(path, "rb") as file:
            sample = file.read(SAMPLE_BYTES)
    except PermissionError:
        raise LstmlabError(f"cannot read data file {path}: permission denied") from None
    except OSError as error:
        raise LstmlabError(f"cannot read data file {path}: {error.strerror or error}") from None
    for magic, what in MAGIC.items():
        if sample.startswith(magic):
            raise LstmlabError(f"{path} is not a CSV text file: it is {what}")
    nul = sample.find(b"\x00")
    if nul >= 0 and not sample.startswith(UTF16_BOMS):
        raise LstmlabError(
            f"{path} is not a CSV text file: it holds NUL bytes (byte {nul}), "
            "so it is binary data; give the price table as CSV text"
        )
    return sample, info.st_size


def _encoding(sample: bytes, path: str) -> tuple[str, str]:
    """The file's encoding and the sample decoded: UTF-16 by its BOM, UTF-8 (BOM or not), else
    Windows-1252, the encoding of spreadsheets saved as CSV on Windows in western locales."""
    if sample.startswith(UTF16_BOMS):
        return "utf-16", sample.decode("utf-16", errors="ignore")
    try:
        return "utf-8-sig", sample.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if error.start >= len(sample) - 3:  # a character cut by the end of the sample
            return "utf-8-sig", sample[: error.start].decode("utf-8-sig")
    try:
        return "cp1252", sample.decode("cp1252")
    except UnicodeDecodeError:
        raise LstmlabError(f"{path} is neither UTF-8 nor Windows-1252 text; save it as UTF-8 CSV") from None


def _leading_blank_lines(text: str) -> int:
    lines = text.splitlines()
    return next((i for i, line in enumerate(lines) if line.strip()), len(lines))


def _dialect(text: str, path: str, truncated: bool) -> tuple[str, list[str]]:
    """The separator and the header's column names, judged on the sample's lines.

    csv.Sniffer guesses from character frequencies and is easily fooled by decimal commas
    ("73,42" in a ;-file); here a separator must split the header into 2+ names and at least half
    the data lines into as many fields (a trailing note line may not), quotes respected. The one
    that most lines agree with wins, then the one giving most columns."""
    lines = text.splitlines()[_leading_blank_lines(text):]
    if truncated and len(lines) > 1:
        lines = lines[:-1]  # may be cut in the middle
    lines = [line for line in lines[:200] if line.strip()]
    best: tuple[tuple[int, int], str, list[str]] | None = None
    for separator in SEPARATORS:
        rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=separator))
        header, data = rows[0], rows[1:]
        if len(header) < 2:
            continue
        # A line may end in a separator (an empty last field): pandas reads that right.
        agreeing = sum(len(row) == len(header) or row[len(header):] == [""] for row in data)
        if data and agreeing < 0.5 * len(data):
            agreeing = -1  # only if nothing else splits the header: pandas names the bad line
        if best is None or (agreeing, len(header)) > best[0]:
            best = ((agreeing, len(header)), separator, [name.strip() for name in header])
    if best is None:
        first = lines[0] if lines else ""
        raise LstmlabError(
            f"{path} has one column ({first[:40]!r}); a price table needs a date column and a price "
            "column, separated by , ; tab or |"
        )
    return best[1], best[2]


def _date_column(header: list[str], name: str | None, path: str) -> str:
    if name:
        return match_column(header, name, path, "data.date_column")
    for column in header:
        if column.lower() in DATE_COLUMN_NAMES:
            return column
    looks_like_data = any(ch.isdigit() for ch in header[0])
    raise LstmlabError(
        f"{path}: no date column found (looked for {', '.join(DATE_COLUMN_NAMES)}; columns: "
        f"{', '.join(header)}); "
        + ("the first line looks like data: add a header line such as Date,Close"
           if looks_like_data else "name it with data.date_column=...")
    )


def _read_columns(path: str, separator: str, encoding: str, columns: list[str], skip: int) -> pd.DataFrame:
    """The named columns as text (NaN where empty or NA), one row per line after the header."""
    try:
        # No usecols: with it pandas drops a line's surplus fields silently, and a line with
        # more fields than the header is a line read wrong (an unquoted decimal comma, say).
        with warnings.catch_warnings():
            # With index_col=False pandas drops a surplus non-empty last field with only this
            # warning ("loss of data"): every line has one field too many (an unquoted 73,42).
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path, sep=separator, encoding=encoding, encoding_errors="strict", dtype=str,
                skip_blank_lines=False, skiprows=skip, skipinitialspace=True, engine="c",
                index_col=False,  # lines ending in a separator must not turn dates into the index
            )
    except pd.errors.ParserWarning:
        raise LstmlabError(
            f"{path}: the lines have more fields than the header names ({', '.join(columns)}...); "
            "quote values that contain the separator, e.g. \"73,42\""
        ) from None
    except pd.errors.ParserError as error:
        raise LstmlabError(f"cannot read {path} as CSV: {first_line(error)}; fix or remove that line") from None
    except UnicodeDecodeError as error:
        raise LstmlabError(f"cannot read {path}: not {encoding} text at byte {error.start}; save it as UTF-8 CSV") from None
    except MemoryError:
        raise LstmlabError(f"{path} does not fit in memory; give a smaller table") from None
    return frame.rename(columns=lambda name: name.strip())[columns]



def _refuse_repeated_dates(dates: pd.DatetimeIndex, lines: np.ndarray, path: str) -> None:
    repeated = dates.duplicated(keep=False)
    if not repeated.any():
        return
    first = dates[np.argmax(repeated)]
    at = lines[np.flatnonzero(dates == first)]
    others = len(set(dates[repeated])) - 1
    day = str(first.date()) if first == first.normalize() else str(first)
    raise LstmlabError(
        f"{path}: date {day} appears more than once (lines {formats.lines_text(at)})"
        + (f"; {others} more date{'s' if others > 1 else ''} repeat{'' if others > 1 else 's'}" if others else "")
        + "; keep one row per date"
    )
