"""The reference: the seed document's model as a plain Keras script, the way tutorials write it.

No lstmlab, no Hydra, no MLflow: read the closes, scale them with a MinMaxScaler fitted on the
training part, cut windows of 60 steps in a Python loop, split chronologically 80/10/10 (the
same rows lstmlab uses), build the seed's Sequential model, fit with batch 32 while validating
on the val part, predict the test part and print its RMSE in price units.

The only additions are timing: the script prints one JSON line with its own `fit` time and the
time of each epoch, so the benchmark can tell time inside `fit` from time outside it.
Run by `baseline_vs_reference.py`; the Keras backend comes from KERAS_BACKEND.

    python benchmarks/reference_keras.py --epochs 5 [--data sp500|synthetic]
"""

from __future__ import annotations

import argparse
import json
import time

import keras
import numpy as np
from keras.layers import LSTM, Dense, Dropout, Input
from keras.models import Sequential
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

LOOKBACK = 60


def load_closes(source: str) -> np.ndarray:
    if source == "sp500":
        import arch.data.sp500

        return arch.data.sp500.load()["Close"].to_numpy(dtype=float)
    from lstmlab.pipeline.data import synthetic_prices  # the same generated series as `data=synthetic`

    return synthetic_prices()["Close"].to_numpy(dtype=float)


class EpochClock(keras.callbacks.Callback):
    """Wall time of each epoch (training plus the validation pass)."""

    def on_train_begin(self, logs=None):
        self.seconds, self._last = [], time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.seconds.append(now - self._last)
        self._last = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--data", choices=("sp500", "synthetic"), default="sp500")
    args = parser.parse_args()

    close = load_closes(args.data).reshape(-1, 1)
    rows = np.arange(len(close))
    n_val = n_test = round(0.1 * len(close))  # whole rows, as lstmlab splits them
    rest, test_rows = train_test_split(rows, test_size=n_test, shuffle=False)
    train_rows, val_rows = train_test_split(rest, test_size=n_val, shuffle=False)

    scaler = MinMaxScaler()
    scaler.fit(close[train_rows])
    scaled = scaler.transform(close)

    def windows(target_rows):
        X, y = [], []
        for i in target_rows:
            if i >= LOOKBACK:
                X.append(scaled[i - LOOKBACK : i, 0])
                y.append(scaled[i, 0])
        X, y = np.array(X), np.array(y)
        return X.reshape(X.shape[0], X.shape[1], 1), y

    X_train, y_train = windows(train_rows)
    X_val, y_val = windows(val_rows)
    X_test, y_test = windows(test_rows)

    model = Sequential()
    model.add(Input(shape=(X_train.shape[1], X_train.shape[2])))
    model.add(LSTM(50, activation="relu", return_sequences=True))
    model.add(Dropout(0.2))
    model.add(LSTM(50, activation="relu"))
    model.add(Dropout(0.2))
    model.add(Dense(1))
    model.compile(optimizer="adam", loss="mse")

    clock = EpochClock()
    started = time.perf_counter()
    model.fit(
        X_train, y_train, epochs=args.epochs, batch_size=32,
        validation_data=(X_val, y_val), callbacks=[clock],
    )
    fit_seconds = time.perf_counter() - started

    predicted = scaler.inverse_transform(model.predict(X_test, verbose=0))
    actual = scaler.inverse_transform(y_test.reshape(-1, 1))
    test_rmse = float(np.sqrt(np.mean((predicted - actual) ** 2)))
    print(json.dumps({
        "fit_seconds": fit_seconds,
        "epoch_seconds": clock.seconds,
        "test_rmse": test_rmse,
        "params": model.count_params(),
        "train_windows": len(X_train),
        "backend": keras.backend.backend(),
    }))


if __name__ == "__main__":
    main()
