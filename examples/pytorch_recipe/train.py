"""A custom PyTorch training script run by Seedlab as a recipe: its own model class, its own
loop, two lines of Seedlab (`seedlab.init`, `run.log`).

Register it once (an admin, on the server), then launch it from New run → Recipe or:
    seedlab recipes add examples/pytorch_recipe --name residual-mlp
    seedlab runs submit --recipe residual-mlp --set lr=0.003 --dataset iris

With a Seedlab dataset chosen, the engine hands its file in SEEDLAB_DATASET_PATH (a Parquet
table; SEEDLAB_DATASET_TARGET names the column to predict); without one, this script makes
a two-spirals toy problem so it runs anywhere. Run by hand (`python train.py`) it logs into
the Seedlab of SEEDLAB_HOME / SEEDLAB_URL as a new run.
"""

from __future__ import annotations

import argparse
import math
import os

import torch
from torch import nn

import seedlab


class ResidualBlock(nn.Module):
    def __init__(self, width: int, activation: type[nn.Module]) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, width), activation(), nn.Linear(width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualMLP(nn.Module):
    """The team's own architecture: nothing Seedlab needs to know about."""

    def __init__(self, inputs: int, classes: int, hidden: int, blocks: int, activation: str):
        super().__init__()
        act = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}[activation]
        self.stem = nn.Linear(inputs, hidden)
        self.blocks = nn.Sequential(*[ResidualBlock(hidden, act) for _ in range(blocks)])
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def load_data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    path = os.environ.get("SEEDLAB_DATASET_PATH")
    if path and path.endswith(".parquet"):
        import pandas as pd

        frame = pd.read_parquet(path)
        target = os.environ.get("SEEDLAB_DATASET_TARGET") or frame.columns[-1]
        labels = frame.pop(target).astype("category").cat.codes.to_numpy()
        numbers = frame.select_dtypes("number").fillna(0.0).to_numpy(dtype="float32")
        x = torch.tensor(numbers)
        x = (x - x.mean(0)) / (x.std(0) + 1e-6)
        return x, torch.tensor(labels, dtype=torch.long)
    g = torch.Generator().manual_seed(seed)  # two interleaved spirals, 600 points
    t = torch.rand(300, generator=g) * 3 * math.pi
    arm = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) / 10
    x = torch.cat([arm, -arm]) + 0.05 * torch.randn(600, 2, generator=g)
    return x, torch.cat([torch.zeros(300), torch.ones(300)]).long()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--activation", default="gelu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    x, y = load_data(args.seed)
    order = torch.randperm(len(x))
    split = int(0.8 * len(x))
    train_idx, val_idx = order[:split], order[split:]
    model = ResidualMLP(x.shape[1], int(y.max()) + 1, args.hidden, args.blocks, args.activation)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()

    with seedlab.init(project="Examples", name="residual-mlp", config=vars(args)) as run:
        start = 0
        checkpoint = run.checkpoint_dir / "last.pt" if run.checkpoint_dir else None
        if run.resumed and checkpoint is not None and checkpoint.exists():
            state = torch.load(checkpoint)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start = state["epoch"] + 1
            print(f"resumed after epoch {state['epoch']}")
        for epoch in range(start, args.epochs):
            model.train()
            for batch in train_idx[torch.randperm(len(train_idx))].split(64):
                optimizer.zero_grad()
                loss = loss_fn(model(x[batch]), y[batch])
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                logits = model(x[val_idx])
                val_loss = loss_fn(logits, y[val_idx]).item()
                val_accuracy = (logits.argmax(1) == y[val_idx]).float().mean().item()
            run.log(
                {"train_loss": loss.item(), "val_loss": val_loss, "val_accuracy": val_accuracy},
                step=epoch,
            )
            if checkpoint is not None:  # kept across a resume (SEEDLAB_CHECKPOINT_DIR)
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
                torch.save({**state, "epoch": epoch}, checkpoint)
            if run.should_stop():  # Cancel on the Run page, or `seedlab runs cancel`
                break
        torch.save(model.state_dict(), "model.pt")
        run.log_artifact("model.pt")
        run.summary({"final_val_accuracy": val_accuracy})
    print(f"run {run.id}: val_accuracy {val_accuracy:.3f}")


if __name__ == "__main__":
    main()
