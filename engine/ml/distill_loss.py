"""Knowledge distillation's loss (Hinton et al., 2015): the student matches the teacher's
softened outputs as well as the labels.

Kept apart from the training loop, which only wraps its loss in `DistillationLoss` and pairs
each batch's labels with `teacher_outputs` when the run has a teacher (config `distill_from`,
attached by engine/ml/distill.py). The teacher sees the same (augmented) batch as the student.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def teacher_outputs(teacher: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    return teacher(xb).float()


class DistillationLoss(nn.Module):
    """(1 - alpha) * the label loss + alpha * the teacher-matching loss, on (labels, teacher
    outputs) targets.

    Classification: KL divergence between the temperature-softened distributions, scaled by
    T² so its gradients keep their size as T changes. Regression: MSE to the teacher's outputs.
    """

    def __init__(self, hard: nn.Module, task: str, temperature: float, alpha: float) -> None:
        super().__init__()
        self.hard, self.task = hard, task
        self.temperature, self.alpha = temperature, alpha

    def forward(self, out: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        labels, teacher_out = target
        out = out.float()
        if self.task == "classification":
            t = self.temperature
            soft = F.kl_div(
                F.log_softmax(out / t, dim=1),
                F.log_softmax(teacher_out / t, dim=1),
                reduction="batchmean",
                log_target=True,
            ) * (t * t)
        else:
            soft = F.mse_loss(out, teacher_out)
        return (1.0 - self.alpha) * self.hard(out, labels) + self.alpha * soft
