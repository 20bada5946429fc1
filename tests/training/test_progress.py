"""The training progress bars stay readable in an 80-column terminal."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from milmer.training.train import _epoch_info, _progress


def _render(completed: int, total: int, record: dict, width: int = 80) -> list[str]:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    bar = _progress(True, console=console)
    bar.add_task("epoch", total=total, completed=completed, info=_epoch_info(record))
    bar.add_task("batch", total=1234, completed=56, info="")
    console.print(bar)
    return console.export_text().rstrip("\n").splitlines()


@pytest.mark.parametrize("total", [60, 100, 1000])
def test_epoch_and_batch_bars_fit_80_columns_uncut(total):
    record = {"train_loss": 1.23456, "val_accuracy": 0.5, "val_macro_f1": 0.4}
    epoch, batch = _render(12, total, record)
    assert epoch.startswith("epoch ") and batch.startswith("batch ")
    assert f" 12/{total} " in epoch and " 56/1234 " in batch
    assert epoch.rstrip().endswith("loss 1.235 val acc 0.500 F1 0.400")
    assert "…" not in epoch + batch  # rich cuts columns that do not fit with an ellipsis
    assert max(len(epoch.rstrip()), len(batch.rstrip())) <= 80
    assert epoch.count("0:00:00") == 1 and "-:--:--" in epoch  # elapsed, then remaining (unknown yet)


def test_epoch_text_without_validation():
    assert _epoch_info({"train_loss": 0.5, "val_accuracy": None, "val_macro_f1": None}) == "loss 0.500"
    (epoch, _) = _render(3, 60, {"train_loss": 0.5, "val_accuracy": None})
    assert re.search(r" 3/60 +0:00:00 -:--:-- loss 0\.500$", epoch.rstrip()), epoch
