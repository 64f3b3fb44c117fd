"""The parity tolerance is absolute for outputs up to 1, relative to the scale beyond."""

from __future__ import annotations

import pytest
import torch

from tasks.training.export_torchscript import ExportParityError, check_parity


class Scaled(torch.nn.Module):
    def __init__(self, scale: float, offset: float = 0.0) -> None:
        super().__init__()
        self.scale, self.offset = scale, offset

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.linspace(-1, 1, 8) * self.scale + self.offset


BATCHES = [{"input_ids": torch.ones(1, 4, dtype=torch.long), "attention_mask": torch.ones(1, 4)}]


def test_logits_in_the_tens_pass_with_a_difference_small_for_their_scale():
    worst = check_parity("decoder", Scaled(40.0), Scaled(40.0, 2e-3), BATCHES, 1e-4)
    assert worst == pytest.approx(2e-3, rel=1e-3)


def test_the_same_difference_on_probabilities_fails():
    with pytest.raises(ExportParityError, match=r"differs from eager by 2\.00e-03 \(tolerance"):
        check_parity("classifier", Scaled(1.0), Scaled(1.0, 2e-3), BATCHES, 1e-4)


def test_a_difference_large_for_the_scale_fails_and_says_so():
    with pytest.raises(ExportParityError, match=r"of the largest output, 40\)"):
        check_parity("decoder", Scaled(40.0), Scaled(40.0, 0.1), BATCHES, 1e-4)
