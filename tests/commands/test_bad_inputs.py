"""Bad inputs through the real command line: one line on stderr, exit 2, no traceback, no run.

Every case runs `lstmlab train ...` in its own process, folder and MLflow store. Data and
config errors are found before a framework is imported (about a second per process), so the
whole table runs as one batch of parallel processes, shared by the tests that check it.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import LSTMLAB

HEADER = "Date,Close\n"


def days(n: int, start: str = "2016-01-04") -> list[str]:
    import pandas as pd

    return [str(d.date()) for d in pd.bdate_range(start, periods=n)]


def rows(values: list[str], dates: list[str] | None = None, header: str = HEADER) -> str:
    dates = dates or days(len(values))
    return header + "".join(f"{d},{v}\n" for d, v in zip(dates, values))


PRICES = [f"{100 + i * 0.5:.2f}" for i in range(100)]


def write(text: str | bytes):
    def make(folder: Path) -> str:
        path = folder / "prices.csv"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return "prices.csv"
    return make


def sparse(size: str):
    def make(folder: Path) -> str:
        subprocess.run(["truncate", "-s", size, str(folder / "big.csv")], check=True)
        return "big.csv"
    return make


def gz(folder: Path) -> str:
    (folder / "prices.csv").write_bytes(gzip.compress(rows(PRICES).encode()))
    return "prices.csv"


def xlsx(folder: Path) -> str:
    with zipfile.ZipFile(folder / "prices.csv", "w") as book:
        book.writestr("xl/workbook.xml", "<workbook/>")
    return "prices.csv"


def directory(folder: Path) -> str:
    (folder / "data").mkdir()
    return "data"


def twice(values: list[str]) -> str:
    dates = [d for d in days(len(values) // 2) for _ in range(2)]
    return rows(values[: len(dates)], dates)


SWAPPED = days(100)
SWAPPED[10], SWAPPED[11] = SWAPPED[11], SWAPPED[10]
UNSORTED_DUPLICATE = list(reversed(days(100)))
UNSORTED_DUPLICATE[50] = UNSORTED_DUPLICATE[7]

# (id, data file maker or None for data=synthetic, overrides, what the one line must say)
FILE_CASES = [
    ("decimal-comma-ambiguous", write(rows([f'"{i},{100 + i}"' for i in range(1, 100)])), [],
     "line 2: '1,101' reads as a thousands separator or a decimal comma"),
    ("decimal-comma-with-dot-decimal-column",
     write("Date,Close,Volume\n" + "".join(f'{d},"73,{i:02d}",{i}.5\n' for i, d in enumerate(days(99)))),
     ["data.features=[Close,Volume]"], "column 'Volume' writes numbers with a decimal point and column 'Close'"),
    ("forced-decimal-contradicts", write(rows(['"73,42"'] * 99)), ["data.decimal=."],
     "not numbers at lines 2, 3, 4, 5, 6 and 94 more (e.g. '73,42'); read with '.' as decimal mark, data.decimal=, would"),
    ("every-date-twice", write(twice(PRICES)), [], "date 2016-01-04 appears more than once (lines 2, 3); 49 more dates repeat"),
    ("unsorted-with-a-duplicate", write(rows(PRICES, UNSORTED_DUPLICATE)), [],
     f"date {UNSORTED_DUPLICATE[7]} appears more than once (lines 9, 52)"),
    ("day-or-month-first", write(rows(PRICES[:12], [f"{m:02d}/{m:02d}/2016" for m in range(1, 13)])), [],
     "'01/01/2016' (line 2) read day-first or month-first and no day above 12 tells which"),
    ("day-first-and-month-first", write(rows(["1", "2"], ["13/01/2016", "01/14/2016"])), [],
     "day-first dates (line 2) and month-first dates (line 3)"),
    ("excel-serial-dates", write(rows(PRICES, [str(42370 + i) for i in range(100)])), [],
     "holds numbers such as '42370' (line 2), not dates: for Excel serial day numbers set data.date_format=excel"),
    ("yyyymmdd-with-a-bad-day", write(rows(["1", "2"], ["20160104", "20160132"])), [],
     "not dates in the format '%Y%m%d' at lines 3 (e.g. '20160132')"),
    ("wrong-date-format-given", write(rows(PRICES)), ["data.date_format=%d/%m/%Y"],
     "not dates in the format '%d/%m/%Y' at lines 2, 3, 4, 5, 6 and 95 more"),
    ("trailing-garbage-line", write(rows(PRICES) + "Data provided by Example Finance\n"), [],
     "column 'Date' has values that are not dates at lines 102 (e.g. 'Data provided by Example Finance')"),
    ("a-line-with-one-field-more", write(rows(PRICES) + "2016-06-01,1,2\n"), [], "Expected 2 fields in line 102, saw 3"),
    ("unquoted-decimal-commas", write(rows([p.replace(".", ",") for p in PRICES])), [],
     "the lines have more fields than the header names"),
    ("a-row-without-date", write(rows(PRICES) + ",5\n"), [], "column 'Date' has no date at lines 102"),
    ("text-in-the-target", write(rows(PRICES[:50] + ["n/a!"] + PRICES[51:])), [], "not numbers at lines 52 (e.g. 'n/a!')"),
    ("inf-in-the-target", write(rows(PRICES[:5] + ["inf"] + PRICES[6:])), [], "line 7: 'inf' is not a finite number"),
    ("minus-infinity-in-the-target", write(rows(PRICES[:5] + ["-Infinity"] + PRICES[6:])), [],
     "line 7: '-Infinity' is not a finite number"),
    ("1e400-in-the-target", write(rows(PRICES[:5] + ["1e400"] + PRICES[6:])), [], "line 7: '1e400' is beyond ±1e+100"),
    ("prices-near-1e302", write(rows([f"{1 + i / 100}e302" for i in range(100)])), [], "line 2: '1.0e302' is beyond ±1e+100"),
    ("empty-file", write(""), [], "prices.csv is empty"),
    ("header-only", write(HEADER), [], "prices.csv has a header line but no data rows"),
    ("one-column", write("Close\n" + "\n".join(PRICES) + "\n"), [], "prices.csv has one column ('Close')"),
    ("no-header-line", write(rows(PRICES, header="")), [], "the first line looks like data: add a header line"),
    ("nul-bytes", write(b"Date,Close\n2016-01-04,1\x00\x00\n"), [], "it holds NUL bytes (byte 23)"),
    ("2-gb-file", sparse("2G"), [], "big.csv is 2,048 MB, more than a daily price table can be (limit data.max_file_mb=1024)"),
    ("2-gb-of-nul-bytes-under-a-raised-limit", sparse("2G"), ["data.max_file_mb=4096"], "it holds NUL bytes (byte 0)"),
    ("gzip", gz, [], "it is gzip-compressed: decompress it first"),
    ("excel-workbook", xlsx, [], "it is an Excel workbook or ZIP archive: save the sheet as CSV"),
    ("a-directory", directory, [], "data.path=data is a directory"),
    ("a-device", lambda folder: "/dev/zero", [], "data.path=/dev/zero is not a regular file"),
    ("missing-file", lambda folder: "nowhere.csv", [], "data file not found: nowhere.csv"),
    ("target-not-a-column", write(rows(PRICES)), ["data.target=Price"], "data.target='Price': no such column"),
    ("constant-prices", write(rows(["100.00"] * 100)), [],
     "prices.csv: the target Close does not move on the training part (80 days, 2016-01-04 … 2016-04-22: it is 100 "
     "every day), so it cannot be scaled and there is nothing to learn; train on prices that move"),
    ("constant-log-returns", write(rows(["100.00"] * 100)), ["data.target_transform=log_return"],
     "does not move on the training part (79 days, 2016-01-05 … 2016-04-22: its day-over-day log return is 0 every day)"),
    ("no-move-on-the-test-days", write(rows(PRICES[:90] + [PRICES[89]] * 10)), [],
     "prices.csv: the target Close does not move on the test part (10 days, 2016-05-09 … 2016-05-20: 144.5 every day), "
     "so the naive forecast is exact there and test_skill (1 − test_rmse / naive_test_rmse) has no value"),
]
CONFIG_CASES = [
    ("trainer.seed=abc", "trainer.seed='abc' must be a whole number from 0 to 4294967295"),
    ("trainer.seed=-1", "trainer.seed=-1 must be a whole number"),
    ("trainer.seed=1.5", "trainer.seed=1.5 must be a whole number"),
    ("trainer.early_stopping.patience=abc", "trainer.early_stopping.patience='abc' must be a whole number of at least 0"),
    ("trainer.early_stopping.min_delta=abc", "trainer.early_stopping.min_delta='abc' must be a number of at least 0"),
    ("trainer.early_stopping.enabled=maybe", "trainer.early_stopping.enabled='maybe' must be true or false"),
    ("trainer.early_stopping.restore_best_weights=1", "restore_best_weights=1 must be true or false"),
    ("trainer.verbose=abc", "trainer.verbose='abc' must be one of auto, 0, 1, 2"),
    ("trainer.verbose=3", "trainer.verbose=3 must be one of auto, 0, 1, 2"),
    ("trainer.shuffle=abc", "trainer.shuffle='abc' must be true or false"),
    ("trainer.epochs=1.5", "trainer.epochs=1.5 must be a whole number of at least 1"),
    ("trainer.batch_size=abc", "trainer.batch_size='abc' must be a whole number"),
    ("trainer.backend=torch", "trainer.backend='torch' must be one of tensorflow, jax"),
    ("model.units=abc", "model.units='abc' must list one whole number above 0 per LSTM layer"),
    ("model.units=[50,true]", "model.units=[50, True] must list one whole number"),
    ("model.dropout=abc", "model.dropout='abc' must be in [0, 1)"),
    ("model.bidirectional=abc", "model.bidirectional='abc' must be true or false"),
    ("model.activation=[1]", "model.activation=[1] must be a name"),
    ("optimizer.learning_rate=abc", "optimizer.learning_rate='abc' must be a number"),
    ("optimizer.learning_rate=0", "optimizer.learning_rate=0 must be above 0"),
    ("loss=huber loss.delta=abc", "loss.delta='abc' must be a number"),
    ("data.lookback=abc", "data.lookback='abc' must be a whole number of at least 1"),
    ("data.val_fraction=abc", "data.val_fraction='abc' must be between 0 and 1"),
    ("data.nan_policy=maybe", "data.nan_policy='maybe' must be one of error, drop, ffill"),
    ("data.features=Close", "data.features='Close' must be a list of column names"),
    ("data.rows=abc", "data.rows='abc' must be a whole number of at least 2"),
    ("tracking.log_model=abc", "tracking.log_model='abc' must be true or false"),
    ("data=csv data.path=p.csv data.decimal=x", "data.decimal='x' must be . or ,"),
    ("data=csv data.path=", "data.path='' must be a file path"),
    ("data=csv", "data.path is not set; give the CSV file: data=csv data.path=prices.csv"),
    ("data=csv data.path=p.csv data.max_file_mb=abc", "data.max_file_mb='abc' must be a number above 0"),
]


def lstmlab_train(folder: Path, *overrides: str, user: list[str] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    env["HOME"] = str(folder)
    return subprocess.run([*user, *LSTMLAB, "train", *overrides],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def runs_in(folder: Path) -> int:
    """Runs in the folder's MLflow store (none when the store was never even created)."""
    db = folder / "mlflow.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as connection:
        return connection.execute("select count(*) from runs").fetchone()[0]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Every case of both tables, run in parallel: {case id: (process result, its folder)}."""
    jobs = {}
    for case, make, overrides, _ in FILE_CASES:
        folder = tmp_path_factory.mktemp(case)
        jobs[case] = (folder, ["data=csv", f"data.path={make(folder)}", *overrides])
    for overrides, _ in CONFIG_CASES:
        folder = tmp_path_factory.mktemp("config")
        jobs[overrides] = (folder, ["data=synthetic", *overrides.split()])
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {case: pool.submit(lstmlab_train, folder, *args) for case, (folder, args) in jobs.items()}
        return {case: (future.result(), jobs[case][0]) for case, future in futures.items()}


def assert_one_clean_line(result: subprocess.CompletedProcess, folder: Path, message: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("lstmlab train: error: "), result.stderr[-3000:]
    assert message in lines[0], lines[0]
    assert runs_in(folder) == 0


@pytest.mark.slow
@pytest.mark.parametrize("case, message", [(c[0], c[3]) for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_bad_data_is_one_line_and_no_run(outcomes, case, message):
    assert_one_clean_line(*outcomes[case], message)


@pytest.mark.slow  # shares a trained fixture with a slow test
@pytest.mark.parametrize("overrides, message", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_values_are_one_line_before_the_run(outcomes, overrides, message):
    assert_one_clean_line(*outcomes[overrides], message)


@pytest.mark.slow
def test_a_2gb_file_is_refused_from_a_sample_in_little_memory(tmp_path):
    """Past the size limit, the NUL sniff still reads only 64 KB: peak RSS stays that of the
    imports (about 200 MB), not the ~16 GB that parsing 2 GB would take."""
    sparse("2G")(tmp_path)
    probe = (
        "import resource, subprocess, sys; "
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
        "print(p.stderr, file=sys.stderr)"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    result = subprocess.run(
        [sys.executable, "-c", probe, *LSTMLAB, "train", "data=csv",
         "data.path=big.csv", "data.max_file_mb=4096"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    status, peak_kb = map(int, result.stdout.split())
    assert status == 2 and "NUL bytes" in result.stderr, result.stderr
    assert peak_kb < 400 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"


@pytest.mark.slow
def test_an_unreadable_file_is_one_line(tmp_path):
    """Permission denied, for real: as root (who reads anything) the command runs as nobody."""
    folder = Path(tempfile.mkdtemp(prefix="lstmlab-perm-"))  # outside pytest's 0700 folders
    try:
        folder.chmod(0o777)
        (folder / "prices.csv").write_text(rows(PRICES))
        (folder / "prices.csv").chmod(0)
        user: list[str] = []
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                pytest.skip("running as root without setpriv: cannot be denied a file")
            user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        result = lstmlab_train(folder, "data=csv", "data.path=prices.csv", user=user)
        assert_one_clean_line(result, folder, "cannot read data file prices.csv: permission denied")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
