"""Pick the device and precision once, up front."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.core.errors import ConfigError


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    autocast_dtype: torch.dtype | None  # None = full fp32

    @property
    def description(self) -> str:
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
            precision = (
                "bf16 autocast"
                if self.autocast_dtype == torch.bfloat16
                else ("fp16 autocast" if self.autocast_dtype == torch.float16 else "fp32")
            )
            return f"cuda:{self.device.index or 0} ({name}, {precision})"
        return self.device.type


def choose_device(requested: str) -> DeviceChoice:
    """auto → CUDA when visible, else CPU. cuda without a GPU is an error that says what to do."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be one of 'auto', 'cpu', 'cuda'; got {requested!r}")
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return DeviceChoice(torch.device("cpu"), None)
    if not torch.cuda.is_available():
        raise ConfigError(
            "device: 'cuda' was requested but no CUDA GPU is visible to the engine. "
            "Use device=auto or device=cpu."
        )
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return DeviceChoice(torch.device("cuda", 0), dtype)
