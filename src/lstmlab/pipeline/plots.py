"""Plots logged with every run: forecasts over the test period, and the loss curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def plot_predictions(table: pd.DataFrame, title: str, path: Path) -> None:
    """Actual vs model vs naive (yesterday's price) over the held-out test part."""
    fig, ax = plt.subplots(figsize=(11, 4.5))
    ax.plot(table.index, table["actual"], label="actual", color="black", linewidth=1.2)
    ax.plot(table.index, table["predicted"], label="model", color="tab:blue", linewidth=1)
    ax.plot(table.index, table["naive"], label="naive (yesterday)", color="tab:orange",
            linewidth=0.8, linestyle="--")
    ax.set(title=title, xlabel="date", ylabel="price")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_losses(history: dict[str, list[float]], loss_name: str, path: Path) -> None:
    """Training and validation loss per epoch (the training loss's units), val RMSE in prices."""
    fig, (loss_ax, rmse_ax) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = range(1, len(history.get("loss", [])) + 1)
    loss_ax.plot(epochs, history.get("loss", []), label="train")
    loss_ax.plot(epochs, history.get("val_loss", []), label="val")
    loss_ax.set(title=f"loss ({loss_name}, scaled)", xlabel="epoch")
    loss_ax.legend()
    rmse_ax.plot(epochs, history.get("val_rmse", []), color="tab:green")
    rmse_ax.set(title="val RMSE (price units)", xlabel="epoch")
    for ax in (loss_ax, rmse_ax):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
