"""CSV formats read right: decimal commas, thousands separators, date styles, encodings."""

from __future__ import annotations

import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import make_config
from lstmlab.pipeline.csv_table import read_price_csv
from lstmlab.pipeline.data import source_frame


def read(tmp_path, content: str | bytes, **options) -> pd.DataFrame:
    path = tmp_path / "p.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    cfg = {"path": str(path), "target": "Close", "features": None, "date_column": None,
           "decimal": None, "date_format": None, **options}
    return read_price_csv(OmegaConf.create(cfg))


def series(frame: pd.DataFrame, column: str = "Close") -> dict[str, float]:
    return {str(d.date()): v for d, v in frame[column].items()}


def test_quoted_decimal_commas_are_decimals_not_thousands(tmp_path):
    frame = read(tmp_path, 'Date,Close\n2016-01-04,"73,42"\n2016-01-05,"74,1"\n2016-01-06,"1.073,50"\n')
    assert series(frame) == {"2016-01-04": 73.42, "2016-01-05": 74.1, "2016-01-06": 1073.5}


def test_a_semicolon_file_with_decimal_commas_and_dot_thousands(tmp_path):
    frame = read(tmp_path, "Date;Close;Volume\n2016-01-04;73,42;1.234.567\n2016-01-05;74;1.000\n",
                 features=["Close", "Volume"])
    assert series(frame) == {"2016-01-04": 73.42, "2016-01-05": 74.0}
    assert series(frame, "Volume") == {"2016-01-04": 1234567.0, "2016-01-05": 1000.0}


def test_thousands_commas_with_decimal_points_and_currency_signs(tmp_path):
    frame = read(tmp_path, 'Date,Close\n2016-01-04,"$1,234.50"\n2016-01-05,"$1,000"\n2016-01-06, 999.5 \n')
    assert series(frame) == {"2016-01-04": 1234.5, "2016-01-05": 1000.0, "2016-01-06": 999.5}


def test_dots_alone_are_decimal_points_and_a_given_decimal_settles_a_comma(tmp_path):
    assert series(read(tmp_path, "Date,Close\n2016-01-04,1.234\n2016-01-05,2.5\n"))["2016-01-04"] == 1.234
    ambiguous = 'Date,Close\n2016-01-04,"1,234"\n2016-01-05,"2,345"\n'
    assert series(read(tmp_path, ambiguous, decimal=","))["2016-01-04"] == 1.234
    assert series(read(tmp_path, ambiguous, decimal="."))["2016-01-04"] == 1234.0


def test_yyyymmdd_integers_are_dates(tmp_path):
    frame = read(tmp_path, "Date,Close\n20160115,1.5\n20160118,2.5\n")
    assert list(frame.index) == [pd.Timestamp("2016-01-15"), pd.Timestamp("2016-01-18")]


@pytest.mark.parametrize(
    "dates, expected",
    [
        (["13/01/2016", "02/03/2016"], ["2016-01-13", "2016-03-02"]),  # a day above 12 first: day-first
        (["01/13/2016", "03/02/2016"], ["2016-01-13", "2016-03-02"]),  # ... second: month-first
        (["13.01.16", "02.03.16"], ["2016-01-13", "2016-03-02"]),  # dots and two-digit years
        (["Jan 4, 2016", "Feb 1, 2016"], ["2016-01-04", "2016-02-01"]),
        (["2016-03-26T00:00:00+01:00", "2016-03-28T00:00:00+02:00"], ["2016-03-26", "2016-03-28"]),
        (["2016-03-26 16:00:00Z", "2016-03-28"], ["2016-03-26", "2016-03-28"]),
    ],
)
def test_date_styles_are_read_as_written(tmp_path, dates, expected):
    frame = read(tmp_path, "Date,Close\n" + "".join(f'"{d}",1\n' for d in dates))
    assert [str(d.date()) for d in frame.index] == expected


def test_mixed_utc_offsets_keep_the_local_date_not_the_utc_one(tmp_path):
    # 00:00+02:00 is 22:00 UTC the day before: a daily table means the date as written.
    frame = read(tmp_path, "Date,Close\n2016-03-28T00:00:00+02:00,1\n2016-03-29T00:00:00+01:00,2\n")
    assert list(frame.index) == [pd.Timestamp("2016-03-28"), pd.Timestamp("2016-03-29")]


def test_given_date_formats_and_excel_serial_days(tmp_path):
    frame = read(tmp_path, "Date,Close\n01/02/2016,1\n02/03/2016,2\n", date_format="%d/%m/%Y")
    assert list(frame.index) == [pd.Timestamp("2016-02-01"), pd.Timestamp("2016-03-02")]
    frame = read(tmp_path, "Date,Close\n42373,1\n42374,2\n", date_format="excel")
    assert list(frame.index) == [pd.Timestamp("2016-01-04"), pd.Timestamp("2016-01-05")]


def test_bom_blank_lines_trailing_separators_and_utf16(tmp_path):
    frame = read(tmp_path, b"\xef\xbb\xbfDate,Close,\n\n2016-01-04,1,\n\n2016-01-05,2,\n")
    assert series(frame) == {"2016-01-04": 1.0, "2016-01-05": 2.0}
    frame = read(tmp_path, "Date\tClose\n2016-01-04\t1,5\n".encode("utf-16"))
    assert series(frame) == {"2016-01-04": 1.5}
    frame = read(tmp_path, "Date;Schlußkurs\n2016-01-04;3\n".encode("cp1252"), target="schlußkurs")
    assert series(frame, "Schlußkurs") == {"2016-01-04": 3.0}  # a Windows-1252 export


def test_line_numbers_count_blank_lines(tmp_path):
    from lstmlab.errors import LstmlabError

    with pytest.raises(LstmlabError, match=r"lines 5 \(e.g. 'Source: Example'\)"):
        read(tmp_path, "Date,Close\n2016-01-04,1\n\n2016-01-05,2\nSource: Example\n")
    with pytest.raises(LstmlabError, match=r"'Close' has values that are not numbers at lines 5 \(e.g. 'x'\)"):
        read(tmp_path, "\n\nDate,Close\n2016-01-04,1\n2016-01-05,x\n")  # blank lines before the header


def test_unsorted_unique_dates_are_sorted(tmp_path):
    (tmp_path / "p.csv").write_text("Date,Close\n2016-01-06,3\n2016-01-04,1\n2016-01-05,2\n")
    cfg = make_config("data=csv", f"data.path={tmp_path / 'p.csv'}").data
    assert list(source_frame(cfg)["Close"]) == [1.0, 2.0, 3.0]
