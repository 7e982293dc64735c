"""`model=auto`: try a few candidate models on the validation split, train the best as the run.

Each dataset kind has a short list of candidates (AUTO_CANDIDATES), each a partial config (the
family and its shape); a candidate gets its family's own hyperparameters where the user left
them alone (engine/core/family_defaults.py). Every candidate trains the same fixed number of
optimizer steps (at most the run's own), from the run's seed, on the training split, and is
scored on the validation split only: the test split never reaches this module, so the choice
cannot flatter the test metrics, and the same seed always makes the same choice. Wall-clock
time is recorded, never used to choose (it varies with the machine's load).

The score is the metric the user chose to monitor, except that the default `val_loss` scores
by accuracy (classification) or RMSE (regression), the numbers a person reads. Ties go to the
earlier candidate: the kind's long-standing default comes first.

A family joins the race with one line in AUTO_CANDIDATES, with `available` when it needs
something this machine may lack (a pretrained encoder: its package or cached weights), and
`own_data` when it reads the data its own way (a pretrained encoder's tokenizer, a backbone's
input size): the caller then prepares that candidate's tensors (`prepare`), from the same split.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.core.catalog import FAMILY_NAMES, HIGHER_IS_BETTER, metric_label
from engine.core.config import RunConfig, validate_config
from engine.core.errors import SeedlabError
from engine.core.family_defaults import fill_family_defaults
from engine.ml.device import DeviceChoice
from engine.ml.train import TrainData, steps_per_epoch, train

log = logging.getLogger("seedlab.auto")

# Optimizer steps each candidate trains (fewer when the run itself is shorter): enough for a
# small model to separate from the others on a few thousand rows, a fraction of a run's steps.
AUTO_STEPS = 300


@dataclass(frozen=True)
class Candidate:
    label: str  # as the Run page's table names it
    values: dict[str, Any]  # a partial config: "model" and the fields that shape it
    available: Callable[[], bool] | None = None  # None: always available
    own_data: bool = False  # prepared for its own config, not with the run's tensors


def _pretrained(kind: str) -> Callable[[], bool]:
    def available() -> bool:
        # Imported here: resolving a base model reads the settings and the package index,
        # which a table's race never needs.
        from engine.ml.pretrained_source import pretrained_available

        return pretrained_available(kind=kind)

    return available


AUTO_CANDIDATES: dict[str, list[Candidate]] = {
    "tabular": [
        Candidate("MLP 128→64", {"model": "mlp", "hidden_sizes": [128, 64], "dropout": 0.1}),
        Candidate("Linear", {"model": "mlp", "hidden_sizes": []}),  # dropout: no layer to drop
        Candidate(
            "MLP 256→128, dropout 0.3",
            {"model": "mlp", "hidden_sizes": [256, 128], "dropout": 0.3},
        ),
    ],
    "text": [
        Candidate("TextCNN", {"model": "textcnn"}),
        Candidate("Embedding bag", {"model": "embedding_bag"}),
        # Frozen: the encoder reads each text once and only the head trains, which a CPU can
        # race in seconds on a few thousand texts (LoRA and full fine-tuning are chosen by name).
        Candidate(
            "Pretrained encoder (frozen) + head",
            {"model": "pretrained", "encoder_mode": "frozen"},
            _pretrained("text"),
            own_data=True,
        ),
    ],
    "image": [
        Candidate("CNN", {"model": "cnn"}),
        Candidate("ResNet", {"model": "resnet"}),
        Candidate(
            "Pretrained backbone (frozen) + head",
            {"model": "pretrained", "encoder_mode": "frozen"},
            _pretrained("image"),
            own_data=True,
        ),
    ],
}


def reads_own_data(kind: str, model: str) -> bool:
    """Whether the `model` candidate of this kind trains on tensors prepared its own way."""
    return any(c.own_data and c.values["model"] == model for c in AUTO_CANDIDATES.get(kind, []))


def candidates_for(kind: str) -> list[Candidate]:
    """The candidates that can train on this machine, in order."""
    return [c for c in AUTO_CANDIDATES.get(kind, []) if c.available is None or c.available()]


_BASE = RunConfig()


def set_by_user(config: RunConfig, candidate: Candidate) -> list[str]:
    """The candidate's shape fields the user set to another value (a field away from RunConfig's
    default counts as set): racing it would override what they asked for."""
    return [
        name
        for name, value in candidate.values.items()
        if name != "model"
        and getattr(config, name) != getattr(_BASE, name)
        and getattr(config, name) != value
    ]


def objective_for(config: RunConfig, task: str) -> tuple[str, bool]:
    """(validation metric the choice maximises or minimises, whether higher is better)."""
    if config.monitor != "val_loss":
        return config.monitor, HIGHER_IS_BETTER[config.monitor]
    return ("val_accuracy", True) if task == "classification" else ("val_rmse", False)


def candidate_config(config: RunConfig, candidate: Candidate) -> RunConfig:
    """The run's config as this candidate trains it: its family's defaults in the fields left
    at RunConfig's defaults, then the candidate's own values."""
    values = fill_family_defaults(config.model_dump(mode="json"), candidate.values["model"])
    values.update(candidate.values)
    return validate_config(values)


@dataclass
class Trial:
    label: str
    model: str
    values: dict[str, Any]  # the fields it changed from the run's config
    score: float | None = None
    val_loss: float | None = None
    steps: int = 0
    epochs: int = 0
    seconds: float = 0.0
    chosen: bool = False
    error: str | None = None


@dataclass
class AutoChoice:
    objective: str
    higher_is_better: bool
    steps_per_candidate: int
    seed: int
    trials: list[Trial] = field(default_factory=list)
    chosen: str = ""
    reason: str = ""
    cancelled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "objective_label": metric_label(self.objective),
            "higher_is_better": self.higher_is_better,
            "steps_per_candidate": self.steps_per_candidate,
            "seed": self.seed,
            "chosen": self.chosen,
            "reason": self.reason,
            "candidates": [vars(t) for t in self.trials],
        }


class _Quiet:
    """A candidate's reporter: its points stay out of the run's curves, but a cancel (and the
    run's heartbeat, which the outer reporter beats when asked) still gets through."""

    def __init__(self, should_stop: Callable[[], bool] | None) -> None:
        self._should_stop = should_stop

    def log(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def should_stop(self) -> bool:
        return bool(self._should_stop and self._should_stop())


def choose_model(
    config: RunConfig,
    data: TrainData,
    choice: DeviceChoice,
    *,
    steps: int = AUTO_STEPS,
    should_stop: Callable[[], bool] | None = None,
    prepare: Callable[[RunConfig], TrainData] | None = None,
) -> tuple[RunConfig, AutoChoice]:
    """(the config the run trains, what was tried and why) for a `model=auto` config.

    Takes the training and validation tensors only: the test split is not an input. `prepare`
    gives an `own_data` candidate its training and validation tensors (the same rows, read its
    way); without it those candidates stay out of the race.
    """
    objective, higher = objective_for(config, data.task)
    candidates = [c for c in candidates_for(data.spec.kind) if prepare or not c.own_data]
    if not candidates:
        raise ValueError(f"model=auto has no candidate for {data.spec.kind} data")
    report = AutoChoice(objective, higher, 0, config.seed)
    fitting = [c for c in candidates if not set_by_user(config, c)]
    if not fitting:
        fields = sorted({name for c in candidates for name in set_by_user(config, c)})
        family = FAMILY_NAMES.get(str(candidates[0].values["model"]), "the default model")
        return first_candidate(
            config,
            data.spec.kind,
            f"Your settings ({', '.join(fields)}) fix the model's shape, so auto did not race "
            f"candidates: the {family} trains as you set it.",
        )
    if len(fitting) == 1:  # nothing to race: the one the user's settings leave
        fields = sorted({name for c in candidates for name in set_by_user(config, c)})
        full = candidate_config(config, fitting[0])
        report.trials.append(Trial(fitting[0].label, full.model, _changes(config, full)))
        report.trials[0].chosen = True
        report.chosen = fitting[0].label
        report.reason = (
            f"Only {fitting[0].label} fits the settings you gave ({', '.join(fields)}); "
            "it trains without a race."
        )
        return full, report
    candidates = fitting
    n = len(data.x_train)
    best: tuple[float, float, int] | None = None  # (signed score, val loss, position)
    configs: list[RunConfig] = []
    failures: list[Exception] = []
    for position, candidate in enumerate(candidates):
        try:
            full = candidate_config(config, candidate)
        except SeedlabError as exc:  # the user's other settings do not fit this family
            model = str(candidate.values["model"])
            report.trials.append(Trial(candidate.label, model, {}, error=_short(exc)))
            configs.append(config)  # a placeholder: a candidate with no score is never chosen
            failures.append(exc)
            continue
        configs.append(full)
        trial = Trial(candidate.label, full.model, _changes(config, full))
        report.trials.append(trial)
        started = time.perf_counter()
        try:
            own = prepare(full) if candidate.own_data and prepare else data
        except (SeedlabError, ValueError, RuntimeError, OSError) as exc:
            trial.seconds = round(time.perf_counter() - started, 3)
            trial.error = _short(exc)
            failures.append(exc)
            continue
        per_epoch = steps_per_epoch(n, min(full.batch_size, n))
        budget = min(steps, full.epochs * per_epoch)
        epochs = max(1, math.ceil(budget / per_epoch))
        report.steps_per_candidate = max(report.steps_per_candidate, epochs * per_epoch)
        trial_config = full.model_copy(
            update={
                "epochs": epochs,
                "early_stopping_patience": 0,  # the same steps for every candidate
                "restore_best_weights": False,
                "monitor": objective,
                "compile": False,
            }
        )
        try:
            result = train(trial_config, own, _Quiet(should_stop), choice)
        except (SeedlabError, ValueError, RuntimeError) as exc:
            # A candidate that cannot train here (diverged, out of memory, a shape this data
            # does not fit) drops out with its reason; the others still compete.
            trial.seconds = round(time.perf_counter() - started, 3)
            trial.error = _short(exc)
            failures.append(exc)
            continue
        trial.seconds = round(time.perf_counter() - started, 3)
        trial.steps, trial.epochs = result.steps_completed, result.epochs_completed
        log.info("model=auto: %s, %d steps, %.1f s", trial.label, trial.steps, trial.seconds)
        if result.cancelled:
            report.cancelled = True
            return full, report
        sign = 1.0 if higher else -1.0
        scored = [h for h in result.history if math.isfinite(h.get(objective, math.nan))]
        if not scored:
            trial.error = "no finite validation score"
            continue
        top = max(scored, key=lambda h: sign * h[objective])
        trial.score, trial.val_loss = float(top[objective]), float(top["val_loss"])
        key = (sign * trial.score, -trial.val_loss, -position)
        if best is None or key > best:
            best = key
    if best is None and failures:  # nothing trained: the first candidate's error says why
        raise failures[0]
    position = 0 if best is None else -best[2]
    report.trials[position].chosen = True
    chosen = report.trials[position]
    report.chosen = chosen.label
    report.reason = _reason(report, chosen)
    return configs[position], report


def _changes(config: RunConfig, full: RunConfig) -> dict[str, Any]:
    """The fields a candidate set, with its family's defaults: what the table's row means."""
    before = config.model_dump(mode="json")
    return {k: v for k, v in full.model_dump(mode="json").items() if before.get(k) != v}


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _reason(report: AutoChoice, chosen: Trial) -> str:
    label = metric_label(report.objective)
    scored = [t for t in report.trials if t.score is not None]
    if chosen.score is None:
        return f"No candidate reached a finite {label}; {chosen.label}, the first, trains."
    ahead = [t for t in scored if t is not chosen]
    best_word = "highest" if report.higher_is_better else "lowest"
    if ahead and all(t.score == chosen.score for t in ahead):
        return (
            f"Every candidate reached the same {label} ({_fmt(chosen.score)}) after "
            f"{report.steps_per_candidate} steps; the lower validation loss decided."
        )
    return (
        f"{chosen.label} ({FAMILY_NAMES.get(chosen.model, chosen.model)}) reached the "
        f"{best_word} {label} ({_fmt(chosen.score)}) after {report.steps_per_candidate} "
        "optimizer steps each, on the validation split."
    )


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def first_candidate(config: RunConfig, kind: str, why: str) -> tuple[RunConfig, AutoChoice]:
    """The kind's first family without a race (the user set its shape), with the user's own
    values where they set them, saying why."""
    candidate = candidates_for(kind)[0]
    kept = {k: v for k, v in candidate.values.items() if k not in set_by_user(config, candidate)}
    full = candidate_config(config, Candidate(candidate.label, kept))
    report = AutoChoice("", True, 0, config.seed, chosen=candidate.label, reason=why)
    report.trials.append(Trial(candidate.label, full.model, _changes(config, full), chosen=True))
    return full, report
