"""Knowledge distillation's loss (Hinton et al., 2015): the student matches the teacher's
softened outputs as well as the labels.

Kept apart from the training loop, which calls `blend_with_teacher` on each batch when the run
has a teacher (config `distill_from`, attached by engine/distill.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def blend_with_teacher(
    hard_loss: torch.Tensor,
    student_out: torch.Tensor,
    teacher: nn.Module,
    xb: torch.Tensor,
    *,
    task: str,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """(1 - alpha) * the label loss + alpha * the teacher-matching loss.

    Classification: KL divergence between the temperature-softened distributions, scaled by
    T² so its gradients keep their size as T changes. Regression: MSE to the teacher's outputs.
    The teacher sees the same (augmented) batch as the student.
    """
    with torch.no_grad():
        teacher_out = teacher(xb).float()
    if task == "classification":
        soft = F.kl_div(
            F.log_softmax(student_out / temperature, dim=1),
            F.log_softmax(teacher_out / temperature, dim=1),
            reduction="batchmean",
            log_target=True,
        ) * (temperature**2)
    else:
        soft = F.mse_loss(student_out, teacher_out)
    return (1.0 - alpha) * hard_loss + alpha * soft
