"""Plots logged with every run: forecasts over the test period, and the loss curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def plot_predictions(table: pd.DataFrame, title: str, path: Path) -> None:
    """Actual vs model vs naive (yesterday's price) over the test days; walk-forward folds (the
    table's `fold` column) as alternately shaded, numbered windows."""
    fig, ax = plt.subplots(figsize=(11, 4.5))
    ax.plot(table.index, table["actual"], label="actual", color="black", linewidth=1.2)
    ax.plot(table.index, table["predicted"], label="model", color="tab:blue", linewidth=1)
    ax.plot(table.index, table["naive"], label="naive (yesterday)", color="tab:orange",
            linewidth=0.8, linestyle="--")
    if table["fold"].nunique() > 1:
        for fold, days in table.groupby("fold", sort=True):
            start, end = days.index.min(), days.index.max()
            if fold % 2:
                ax.axvspan(start, end, color="grey", alpha=0.12, linewidth=0)
            ax.axvline(start, color="grey", linewidth=0.6, linestyle=":")
            ax.text(start + (end - start) / 2, 1.0, f"fold {fold}", transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=8, color="dimgrey")
    ax.set(xlabel="date", ylabel="price")
    ax.set_title(title, pad=14 if table["fold"].nunique() > 1 else None)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_losses(histories: list[dict[str, list[float]]], loss_name: str, path: Path) -> None:
    """Training and validation loss per epoch (the training loss's units), val RMSE in prices;
    one line per walk-forward fold (its own val part, so folds' RMSEs differ in level)."""
    fig, (loss_ax, rmse_ax) = plt.subplots(1, 2, figsize=(11, 4))
    several = len(histories) > 1
    for fold, history in enumerate(histories, start=1):
        label = f"fold {fold} " if several else ""
        color = f"C{(fold - 1) % 10}"
        epochs = range(1, len(history.get("loss", [])) + 1)
        loss_ax.plot(epochs, history.get("loss", []), label=f"{label}train",
                     color=color if several else None)
        loss_ax.plot(epochs, history.get("val_loss", []), label=f"{label}val",
                     color=color if several else None, linestyle="--" if several else "-")
        rmse_ax.plot(epochs, history.get("val_rmse", []), label=f"fold {fold}" if several else None,
                     color=color if several else "tab:green")
    loss_ax.set(title=f"loss ({loss_name}, scaled)", xlabel="epoch")
    loss_ax.legend(fontsize=7 if several else None, ncol=2 if several else 1)
    rmse_ax.set(title="val RMSE (price units)", xlabel="epoch")
    if several:
        rmse_ax.legend(fontsize=7)
    for ax in (loss_ax, rmse_ax):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
