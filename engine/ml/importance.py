"""Permutation feature importance of a table model on its test split, per original column.

scikit-learn's `permutation_importance` shuffles one *raw* input column of the test rows at a
time and scores the run's model (`Predictor`) with the run's metric. Shuffling a raw column
shuffles all of its encoded columns together (its one-hot block, its missing-value indicator),
so each importance belongs to a column the user knows (ShuffledRowsModel below does it on the
encoded rows, which is the same thing, since preprocessing works row by row).

An importance is the drop of the metric when the column is shuffled (in the metric's own units;
for error metrics such as RMSE, the rise of the error): about 0 means the model does not use it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn import metrics as skm
from sklearn.base import BaseEstimator
from sklearn.inspection import permutation_importance

from engine.core.atomic import write_json_atomic
from engine.core.errors import SeedlabError
from engine.ml.evaluate import balanced_accuracy
from engine.ml.predictor import Predictor
from engine.ml.prep.tabular import TabularPreprocessor

log = logging.getLogger("seedlab.importance")

# At the end of a run: few enough rows and repeats to cost well under a second on small data.
RUN_MAX_ROWS = 1000
RUN_MAX_REPEATS = 10
RUN_TIME_BUDGET_S = 1.0
# Beyond this many budgets for a single repeat, importance is skipped rather than run long
# (at the end of a run: `seedlab runs importance ID` can still compute it, with its own budget).
SKIP_FACTOR = 10

# metric -> (scikit-learn score on (y_true, y_pred), higher is better)
METRICS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], float], bool]] = {
    "accuracy": (skm.accuracy_score, True),
    "balanced_accuracy": (balanced_accuracy, True),
    "f1_macro": (lambda y, p: skm.f1_score(y, p, average="macro", zero_division=0), True),
    "rmse": (lambda y, p: float(np.sqrt(skm.mean_squared_error(y, p))), False),
    "mae": (skm.mean_absolute_error, False),
}


class ImportanceError(SeedlabError):
    """Importance cannot be computed for this run; the message says why."""


def metric_for(task: str, monitor: str | None) -> str:
    """The run's metric: the quality metric it monitored, else its headline (accuracy, RMSE)."""
    name = (monitor or "").removeprefix("val_")
    classification = ("accuracy", "balanced_accuracy", "f1_macro")
    wanted = classification if task == "classification" else ("rmse", "mae")
    if name in wanted:
        return name
    return "accuracy" if task == "classification" else "rmse"


def column_groups(predictor: Predictor) -> list[tuple[str, int, int]]:
    """Each raw input column with the span [start, stop) of the encoded columns it becomes (its
    value and missing-value indicator, or its one-hot block), in the preprocessor's order."""
    pre = predictor.preprocessor
    if not isinstance(pre, TabularPreprocessor):
        raise ImportanceError(
            f"Permutation importance is for table models; this one takes {predictor.kind}."
        )
    widths = [(s.name, 1 + int(s.add_missing_indicator)) for s in pre.numeric]
    widths += [
        (s.name, len(s.categories) + int(s.has_other) + int(s.has_missing)) for s in pre.categorical
    ]
    widths += [(s.name, s.width) for s in [*pre.dates, *pre.words]]
    groups, start = [], 0
    for name, width in widths:
        groups.append((name, start, start + width))
        start += width
    if start != predictor.spec.shape[0]:
        raise ImportanceError(
            f"The model takes {predictor.spec.shape[0]} encoded features but its preprocessing "
            f"makes {start}; retrain the run with this version of Seedlab."
        )
    return groups


class ShuffledRowsModel(BaseEstimator):
    """A trained table model as scikit-learn sees it for permutation importance.

    Its input X has one column per raw input column, holding row numbers (initially 0..n-1).
    When scikit-learn shuffles column g, every row takes the encoded block of column g (its
    one-hot columns together) from another row: exactly a shuffle of the raw column, without
    re-encoding the table on each pass (pandas preprocessing costs ~100x the forward pass).
    """

    def __init__(
        self,
        predictor: Predictor | None = None,
        encoded: np.ndarray | None = None,
        groups: list[tuple[str, int, int]] | None = None,
    ) -> None:
        self.predictor = predictor
        self.encoded = encoded
        self.groups = groups

    def fit(self, X: np.ndarray, y: Any = None) -> ShuffledRowsModel:  # noqa: ANN401, N803
        return self  # trained by Seedlab; permutation importance never refits

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def predict(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """Class indices (in the predictor's class order) or target values."""
        assert self.predictor is not None and self.encoded is not None and self.groups
        rows = np.asarray(X, dtype=np.int64)
        x = np.empty_like(self.encoded)
        for g, (_, start, stop) in enumerate(self.groups):
            x[:, start:stop] = self.encoded[rows[:, g], start:stop]
        out = self.predictor.outputs(torch.from_numpy(x))
        return out.argmax(axis=1) if self.predictor.task == "classification" else out


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Many tiny forward passes: on a busy machine torch's intra-op threads spin and wait on
    each other (measured 100 ms per pass of 22 rows with 2 threads under load, 1.3 ms with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def compute_importance(
    predictor: Predictor,
    encoded: np.ndarray,
    y_true: np.ndarray,
    *,
    metric: str,
    max_rows: int = RUN_MAX_ROWS,
    max_repeats: int = RUN_MAX_REPEATS,
    time_budget_s: float = RUN_TIME_BUDGET_S,
    seed: int = 0,
) -> dict[str, Any]:
    """Permutation importance per raw input column, as a JSON-ready dict.

    `encoded` is the test rows as the model takes them (`predictor.encode(frame)`); `y_true` is
    class indices for classification, target values for regression. Rows are sampled down to
    `max_rows`; shuffles of every column are repeated (at least once, at most `max_repeats`
    times) until `time_budget_s` is spent. When one scoring pass says even one repeat would take
    far longer, it is refused instead.
    """
    groups = column_groups(predictor)
    if metric not in METRICS:
        raise ImportanceError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}.")
    encoded = np.ascontiguousarray(encoded, dtype=np.float32)
    y_true = np.asarray(y_true)
    if len(encoded) < 2:
        raise ImportanceError("The test split has fewer than 2 rows; nothing to shuffle.")
    started = time.perf_counter()
    if len(encoded) > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(encoded), max_rows, replace=False))
        encoded, y_true = encoded[keep], y_true[keep]
    score_fn, higher_is_better = METRICS[metric]
    sign = 1.0 if higher_is_better else -1.0

    def scorer(estimator: ShuffledRowsModel, X: np.ndarray, y: np.ndarray) -> float:  # noqa: N803
        return sign * float(score_fn(y, estimator.predict(X)))

    model = ShuffledRowsModel(predictor, encoded, groups)
    rows = np.repeat(np.arange(len(encoded))[:, None], len(groups), axis=1)
    with _one_torch_thread():
        timing = time.perf_counter()
        baseline = scorer(model, rows, y_true)
        one_pass_s = max(time.perf_counter() - timing, 1e-6)
        one_repeat_s = one_pass_s * len(groups)
        if one_repeat_s > SKIP_FACTOR * time_budget_s:
            # Many columns or a slow model: even one shuffle per column is far over budget.
            raise ImportanceError(
                f"One shuffle of each of the {len(groups)} columns would take about "
                f"{one_repeat_s:.1f} s (budget {time_budget_s:g} s); use fewer rows "
                "(`seedlab runs importance RUN_ID --rows N`)."
            )
        # One repeat at a time until the budget is spent: a deadline that holds even when the
        # machine slows down after the timing pass (a shared CPU), at one extra pass a repeat.
        state = np.random.RandomState(seed)
        deadline = started + time_budget_s
        shuffles: list[np.ndarray] = []
        while len(shuffles) < max_repeats:
            once = permutation_importance(
                model, rows, y_true, scoring=scorer, n_repeats=1, random_state=state
            )
            shuffles.append(once.importances[:, 0])
            if time.perf_counter() >= deadline:
                break
    importances = np.stack(shuffles, axis=1)
    repeats = importances.shape[1]
    features = [
        {"name": name, "importance": float(mean), "std": float(std)}
        for (name, _, _), mean, std in zip(
            groups, importances.mean(axis=1), importances.std(axis=1), strict=True
        )
    ]
    features.sort(key=lambda f: -f["importance"])
    return {
        "method": "permutation",
        "metric": metric,
        "higher_is_better": higher_is_better,
        "baseline": sign * baseline,
        "n_rows": int(len(encoded)),
        "n_repeats": int(repeats),
        "seconds": round(time.perf_counter() - started, 4),
        "features": features,
    }


def importance_at_end_of_run(
    checkpoint: Path, data: Any, monitor: str | None, seed: int
) -> dict[str, Any]:
    """`{"importance": ...}` for a finished table run, `{}` otherwise. Never raises: a run whose
    importance fails is still a completed run (the reason goes to its log)."""
    if data.train_data.spec.kind != "tabular":
        return {}
    try:
        predictor = Predictor.load(checkpoint)
        encoded = data.x_test.detach().cpu().numpy()
        result = compute_importance(
            predictor,
            encoded,
            np.asarray(data.y_test),
            metric=metric_for(data.task, monitor),
            seed=seed,
        )
    except Exception as exc:  # noqa: BLE001 (an optional extra must not fail the run)
        log.warning("permutation importance skipped: %s: %s", type(exc).__name__, exc)
        return {}
    log.info(
        "permutation importance (%s, %d rows x %d repeats) in %.2f s",
        result["metric"],
        result["n_rows"],
        result["n_repeats"],
        result["seconds"],
    )
    return {"importance": result}


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Replace report.json atomically (a reader never sees half a file)."""
    write_json_atomic(path, report)
