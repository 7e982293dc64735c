"""A finished run's verdict: how it compares with its baselines, in one line, and what looks
wrong with it, each warning with a code, a sentence and what to do.

`judge_run` gathers the facts from the prepared data, the training history and the test report;
the checks below are plain functions of numbers, each with its threshold and why. The thresholds
are stated in units that carry across datasets (standard errors of the test split, the loss an
untrained model scores, shares of rows), not tuned to the demo datasets.
No database here: the runner stores the dict on the run (runs.verdict).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score, r2_score
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_limits

from engine.core.config import RunConfig
from engine.ml.baselines import compute_baselines
from engine.ml.prepared import PreparedData
from engine.ml.train import TrainResult

log = logging.getLogger("seedlab.verdict")

VERDICT_VERSION = 1
Warning = dict[str, str]

# no_better_than_trivial: an accuracy measured on n test rows moves by about sqrt(p(1-p)/n) by
# chance alone; a run within two of those of the trivial guess (the usual 95 % band) has not
# shown that it learned anything. At least one point, so a huge test split still needs a lead.
TRIVIAL_MARGIN_SE = 2.0
TRIVIAL_MIN_MARGIN = 0.01
# Regression: an RMSE less than 2 % below the training mean's explains under ~4 % of the
# target's variance (1 - 0.98²): nothing a person would call a model.
REGRESSION_MIN_GAIN = 0.02
# diverged: an untrained network scores about the "start loss" (ln K for K classes, 1 for a
# standardized regression target); a training loss ten times that means the updates overshot
# and blew the weights up, whatever the dataset. Rising threefold from the first epoch to the
# last (and ending above the start loss) is the slower form of the same.
DIVERGE_FACTOR = 10.0
RISING_FACTOR = 3.0
# target_looks_like_id: when the target has a value of its own for half the rows or more (at most
# two rows per value on average), it names rows (an ID, a name, a timestamp) rather than
# grouping them, and nothing learned from one row carries over to another.
ID_SHARE = 0.5
# too_few_rows_per_class: below five training rows a class can be neither learned nor measured
# (stratified splitting itself needs a few per class).
MIN_ROWS_PER_CLASS = 5
# leakage: one feature alone that predicts the target to 99 % (balanced accuracy, or R²), both
# on the training rows and on the validation rows it was not fitted on. Real single predictors
# stay well below that (the best single iris measurement: ~95 %); a copy of the target, or a
# value computed from it, reaches it. The tree is small (2 leaves per class, 32 for regression),
# so it cannot memorise its way there.
LEAK_SCORE = 0.99
LEAK_MAX_ROWS = 5000  # training rows each single-feature tree sees (a subsample beyond)
LEAK_MAX_COLUMNS = 300  # source columns checked, in order, on very wide tables
# classes_never_predicted: a class with at least five test rows that the model predicted for
# none of them; with fewer rows, missing all of them can be ordinary mistakes.
MIN_TEST_ROWS_NEVER_PREDICTED = 5
# overfitting: validation loss ends at least 1.5× its best and half a start loss above it while
# the training loss went on falling: the gap between what the model knows of its training rows
# and what carries over has opened wide. Half a start loss is far above the noise of a small
# validation split (one confidently wrong row of 20 moves it by ~0.3 of ln 3).
OVERFIT_RATIO = 1.5
OVERFIT_RISE = 0.5


def judge_run(
    config: RunConfig, data: PreparedData, result: TrainResult, report: dict[str, Any]
) -> dict[str, Any]:
    """The verdict of a completed run (JSON-ready): baselines, warnings, summary."""
    # scikit-learn's BLAS and OpenMP threads get the run's own CPU share (torch's thread count,
    # which the worker sets): on busy cores, more threads than that made a 0.02 s logistic
    # regression take 4 s. Its per-fit warnings (rare classes, convergence) are silenced: the
    # verdict says what matters, and the run's log stays readable.
    with threadpool_limits(limits=max(1, torch.get_num_threads())), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _judge(config, data, result, report)


def _judge(
    config: RunConfig, data: PreparedData, result: TrainResult, report: dict[str, Any]
) -> dict[str, Any]:
    started = time.perf_counter()
    task = data.task
    classes = list(data.target.classes) if task == "classification" else []
    start_loss = math.log(len(classes)) if len(classes) >= 2 else 1.0
    baseline = compute_baselines(data, config.seed)
    train = data.train_data
    y_train = train.y_train.detach().cpu().numpy()
    y_val = train.y_val.detach().cpu().numpy()
    metrics = report.get("metrics") or {}
    n_test = int(report.get("n_test") or len(data.y_test))
    found: list[Warning | None] = [
        check_diverged(result.history, start_loss, config.learning_rate),
    ]
    if task == "classification":
        found += check_classes(
            classes, [y_train, y_val, np.asarray(data.y_test, dtype=np.int64)], len(y_train)
        )
    else:
        found.append(check_id_like_number(data.target.decode_regression(y_train.astype(float))))
    if train.spec.kind == "tabular" and isinstance(train.x_train, torch.Tensor):
        found.append(
            check_leakage(
                train.x_train.detach().cpu().numpy(),
                y_train,
                train.x_val.detach().cpu().numpy(),
                y_val,
                data.feature_names,
                task,
                len(classes),
                config.seed,
            )
        )
    found.append(check_trivial(task, metrics, baseline["trivial"]["metrics"], n_test))
    if task == "classification":
        found.append(check_never_predicted(report))
    found.append(check_overfitting(result.history, start_loss, config.restore_best_weights))
    problems = [w for w in found if w is not None]
    summary, short, metric = summary_line(task, metrics, baseline, problems)
    return _jsonable(
        {
            "version": VERDICT_VERSION,
            "summary": summary,
            "short": short,
            "metric": metric,
            "value": metrics.get(metric),
            "baseline": baseline,
            "warnings": problems,
            "seconds": round(time.perf_counter() - started, 3),
        }
    )


def verdict_or_none(
    config: RunConfig, data: PreparedData, result: TrainResult, report: dict[str, Any]
) -> dict[str, Any] | None:
    """`judge_run`, or None ("no verdict") if judging fails: a trained run stays completed,
    and its log has the traceback."""
    try:
        verdict = judge_run(config, data, result, report)
    except Exception:  # a verdict must never fail a trained run
        log.exception("could not judge the run against its baselines")
        return None
    codes = [w["code"] for w in verdict["warnings"]]
    log.info("verdict: %s warnings: %s", verdict["summary"], codes or "none")
    return verdict


def _warning(code: str, message: str, advice: str) -> Warning:
    return {"code": code, "message": message, "advice": advice}


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _loss(value: float) -> str:
    """A loss for a sentence: 0.693, 4,210, or 1.8 × 10¹⁴ for the huge ones."""
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1e6:
        exponent = math.floor(math.log10(abs(value)))
        mantissa = value / 10**exponent
        return f"{mantissa:.1f} × 10{str(exponent).translate(_SUPERSCRIPT)}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


# ---------------------------------------------------------------- checks


def check_diverged(
    history: Sequence[dict[str, float]], start_loss: float, learning_rate: float
) -> Warning | None:
    """Non-finite losses, a training loss far above an untrained model's, or one that rose."""
    train = [float(h["train_loss"]) for h in history if "train_loss" in h]
    val = [float(h["val_loss"]) for h in history if "val_loss" in h]
    if not train:
        return None
    advice = (
        f"Lower the learning rate (now {learning_rate:g}): try {learning_rate / 10:g}. "
        "Gradient clipping (grad_clip_norm 1) also keeps single steps from blowing up."
    )
    bad = [v for v in train + val if not math.isfinite(v)]
    if bad:
        return _warning(
            "diverged",
            f"A loss became {bad[0]} during training: the updates overshot and the model's "
            "numbers overflowed.",
            advice,
        )
    peak = max(range(len(train)), key=train.__getitem__)
    if train[peak] > DIVERGE_FACTOR * start_loss:
        return _warning(
            "diverged",
            f"The training loss reached {_loss(train[peak])} in epoch {peak + 1}, more than "
            f"{DIVERGE_FACTOR:.0f}× the {_loss(start_loss)} an untrained model scores: the "
            "updates overshot, so the result is unreliable even if the test score looks fine.",
            advice,
        )
    if len(train) >= 2 and train[-1] > RISING_FACTOR * train[0] and train[-1] > start_loss:
        return _warning(
            "diverged",
            f"The training loss rose from {_loss(train[0])} in the first epoch to "
            f"{_loss(train[-1])} in the last: training went the wrong way.",
            advice,
        )
    return None


def check_classes(
    classes: Sequence[str], labels: Sequence[np.ndarray], n_train: int
) -> list[Warning | None]:
    """target_looks_like_id, else too_few_rows_per_class (labels: train, val, test indices)."""
    k = len(classes)
    counts = sum(np.bincount(np.asarray(y, dtype=np.int64), minlength=k) for y in labels)
    n_rows = int(sum(len(y) for y in labels))
    distinct = int((counts > 0).sum())
    if n_rows and distinct >= ID_SHARE * n_rows:
        return [
            _warning(
                "target_looks_like_id",
                f"The target has {distinct:,} different values in {n_rows:,} rows: nearly every "
                "row has a value of its own, like a name or an ID, so nothing learned from one "
                "row carries over to another.",
                "Choose a target column that groups rows into a few repeated categories (a type, "
                "a label, yes/no), or a number to predict with task regression.",
            )
        ]
    train_counts = np.bincount(np.asarray(labels[0], dtype=np.int64), minlength=k)
    rare = [classes[i] for i in range(k) if train_counts[i] < MIN_ROWS_PER_CLASS]
    if not rare:
        return []
    names = ", ".join(repr(c) for c in rare[:5]) + (" …" if len(rare) > 5 else "")
    return [
        _warning(
            "too_few_rows_per_class",
            f"{len(rare)} of {k} classes have fewer than {MIN_ROWS_PER_CLASS} training rows "
            f"({names}): a model cannot learn a class from so few examples, and its test score "
            "on them is luck.",
            "Add rows of these classes, merge rare classes into a broader one, or remove their "
            "rows.",
        )
    ]


def check_id_like_number(values: np.ndarray) -> Warning | None:
    """A regression target of distinct whole numbers in a near-consecutive run: a row number."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    n = len(values)
    if n < 20 or not np.allclose(values, np.round(values), atol=1e-6):
        return None
    distinct = len(np.unique(np.round(values)))
    span = float(values.max() - values.min()) + 1
    # Nearly all distinct (95 %), and packed into a range of at most three values per training
    # row (the training split holds ~70 % of an ID's range): row numbers and IDs look like that,
    # measured quantities almost never do.
    if distinct < 0.95 * n or span > 3 * n:
        return None
    return _warning(
        "target_looks_like_id",
        f"The target's training values are {distinct:,} different whole numbers from "
        f"{values.min():.0f} to {values.max():.0f}: it looks like a row number or an ID, "
        "which no feature can predict.",
        "Choose the column you actually want to predict as the target.",
    )


def _source_column(feature: str) -> str:
    """The dataset column a preprocessed feature comes from ("city=Paris" → "city")."""
    return feature.split("=", 1)[0].removesuffix("__is_missing")


def check_leakage(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    feature_names: Sequence[str],
    task: str,
    n_classes: int,
    seed: int = 0,
) -> Warning | None:
    """A single source column that predicts the target almost perfectly (see LEAK_SCORE)."""
    if len(y_train) < 20 or len(y_val) < 5 or not len(feature_names):
        return None
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(feature_names):
        groups.setdefault(_source_column(name), []).append(i)
    rows = np.arange(len(y_train))
    if len(rows) > LEAK_MAX_ROWS:
        rows = np.random.default_rng(seed).choice(len(rows), LEAK_MAX_ROWS, replace=False)
    x, y = x_train[rows], y_train[rows]
    for column, idx in list(groups.items())[:LEAK_MAX_COLUMNS]:
        if task == "classification":
            if len(np.unique(y)) < 2:
                return None
            tree: Any = DecisionTreeClassifier(
                max_leaf_nodes=max(2, 2 * n_classes), random_state=seed
            ).fit(x[:, idx], y)
            inside = balanced_accuracy_score(y, tree.predict(x[:, idx]))
            outside = balanced_accuracy_score(y_val, tree.predict(x_val[:, idx]))
        else:
            tree = DecisionTreeRegressor(max_leaf_nodes=32, random_state=seed).fit(x[:, idx], y)
            inside = r2_score(y, tree.predict(x[:, idx]))
            outside = r2_score(y_val, tree.predict(x_val[:, idx]))
        if min(inside, outside) >= LEAK_SCORE:
            return _warning(
                "leakage",
                f"The column {column!r} alone predicts the target almost perfectly "
                f"({_pct(outside)} on validation rows it never saw): it is probably a copy of "
                "the target or computed from it, and it will not be known when the model is "
                "used.",
                f"Remove {column!r} from the data (upload it again without that column) unless "
                "it will truly be known at prediction time, then train again.",
            )
    return None


def check_trivial(
    task: str, run: dict[str, float], trivial: dict[str, float], n_test: int
) -> Warning | None:
    """The run does not beat the trivial baseline by more than chance (see TRIVIAL_MARGIN_SE)."""
    if task == "classification":
        acc, base = run.get("test_accuracy"), trivial.get("test_accuracy")
        bal, chance = run.get("test_balanced_accuracy"), trivial.get("test_balanced_accuracy")
        if None in (acc, base, bal, chance) or n_test <= 0:
            return None
        if acc > base + _margin(base, n_test) or bal > chance + _margin(chance, n_test):
            return None
        return _warning(
            "no_better_than_trivial",
            f"Test accuracy {_pct(acc)} against {_pct(base)} for always answering the most "
            f"frequent class (balanced accuracy {_pct(bal)}, chance {_pct(chance)}): the model "
            "has not learned anything that carries over to new rows.",
            "Check that the target can be predicted from these columns and is the right one; "
            "if the training loss barely moved, train longer or with a higher learning rate.",
        )
    rmse, base = run.get("test_rmse"), trivial.get("test_rmse")
    if rmse is None or base is None or not base > 0 or not math.isfinite(rmse):
        return None
    if rmse < (1 - REGRESSION_MIN_GAIN) * base:
        return None
    return _warning(
        "no_better_than_trivial",
        f"Test RMSE {rmse:.4g} against {base:.4g} for always predicting the training mean: the "
        "model explains almost none of the target's variation.",
        "Check that the target can be predicted from these columns and is the right one; if "
        "the training loss barely moved, train longer or with a higher learning rate.",
    )


def _margin(rate: float, n: int) -> float:
    return max(TRIVIAL_MIN_MARGIN, TRIVIAL_MARGIN_SE * math.sqrt(rate * (1 - rate) / n))


def check_never_predicted(report: dict[str, Any]) -> Warning | None:
    """Classes with enough test rows that the model predicted for none of them."""
    matrix, classes = report.get("confusion_matrix"), report.get("classes")
    if not matrix or not classes:
        return None
    cm = np.asarray(matrix)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    never = [
        (classes[i], int(support[i]))
        for i in range(len(classes))
        if support[i] >= MIN_TEST_ROWS_NEVER_PREDICTED and predicted[i] == 0
    ]
    if not never:
        return None
    names = ", ".join(f"{c!r} ({n} test rows)" for c, n in never[:5])
    return _warning(
        "classes_never_predicted",
        f"The model never predicts {names}{' …' if len(never) > 5 else ''}: every test row of "
        "these classes was given another class.",
        "Set imbalance to class weights or weighted sampling so rare classes count more, train "
        "longer, or add rows of these classes.",
    )


def check_overfitting(
    history: Sequence[dict[str, float]], start_loss: float, restored: bool
) -> Warning | None:
    """Validation loss climbed well above its best while training loss kept falling."""
    pairs = [
        (float(h["train_loss"]), float(h["val_loss"]))
        for h in history
        if "train_loss" in h and "val_loss" in h
    ]
    if len(pairs) < 3 or not all(math.isfinite(v) for p in pairs for v in p):
        return None
    val = [v for _, v in pairs]
    best = min(range(len(val)), key=val.__getitem__)
    last = val[-1]
    widened = last >= OVERFIT_RATIO * val[best] and last - val[best] >= OVERFIT_RISE * start_loss
    if not widened or pairs[-1][0] >= pairs[best][0]:
        return None
    kept = (
        f" The run kept epoch {best + 1}'s weights (restore_best_weights), so its test score "
        "is the best epoch's."
        if restored
        else ""
    )
    return _warning(
        "overfitting",
        f"Validation loss rose from {_loss(val[best])} (epoch {best + 1}) to {_loss(last)} "
        f"(epoch {len(val)}) while the training loss kept falling: the model learned its "
        "training rows by heart rather than what carries over to new ones.",
        "Stop earlier (early_stopping_patience 5 to 10), raise dropout or weight decay, use a "
        f"smaller model, or add rows.{kept}",
    )


# ---------------------------------------------------------------- summary


def summary_line(
    task: str, run: dict[str, float], baseline: dict[str, Any], problems: Sequence[Warning]
) -> tuple[str, str, str]:
    """(one line for people, a short form for tables, the metric compared)."""
    trivial = baseline["trivial"]
    classical = baseline.get("classical")
    if task == "classification":
        metric = "test_accuracy"
        value = run.get(metric)
        if value is None:
            return "No test accuracy to compare.", "—", metric
        parts, short = [], []
        lead = _points(value - trivial["metrics"][metric])
        if any(w["code"] == "no_better_than_trivial" for w in problems):
            parts.append(
                f"No better than {trivial['name']} "
                f"({_pct(value)} against {_pct(trivial['metrics'][metric])} accuracy)"
            )
        elif lead >= 1:
            parts.append(f"Beats {trivial['name']} by {lead} point{'s' * (lead != 1)}")
        elif lead > -1:
            parts.append(f"Level with {trivial['name']} on accuracy")
        else:
            parts.append(f"{-lead} points below {trivial['name']} on accuracy")
        short.append(f"{lead:+d} pts vs guess")
        if classical:
            gap = _points(value - classical["metrics"][metric])
            name = classical["name"]
            if abs(gap) < 1:
                parts.append(f"within 1 point of {name}")
                short.append(f"≈ {name}")
            elif gap > 0:
                parts.append(f"{gap} point{'s' * (gap != 1)} above {name}")
                short.append(f"{gap:+d} pts vs {name}")
            else:
                parts.append(
                    f"{-gap} point{'s' * (gap != -1)} below {name} "
                    f"({_pct(classical['metrics'][metric])})"
                )
                short.append(f"{gap:+d} pts vs {name}")
        return ", ".join(parts) + ".", " · ".join(short), metric
    metric = "test_rmse"
    value = run.get(metric)
    if value is None or not math.isfinite(value):
        return "No test RMSE to compare.", "—", metric
    base = trivial["metrics"][metric]
    change = _relative(value, base)
    parts = [f"RMSE {abs(change)} % {'lower' if change < 0 else 'higher'} than {trivial['name']}"]
    short = [f"RMSE {change:+d} % vs mean"]
    if classical:
        gap = _relative(value, classical["metrics"][metric])
        name = classical["name"]
        if abs(gap) < 1:
            parts.append(f"within 1 % of {name}")
            short.append(f"≈ {name}")
        else:
            parts.append(f"{abs(gap)} % {'lower' if gap < 0 else 'higher'} than {name}")
            short.append(f"{gap:+d} % vs {name}")
    return ", ".join(parts) + ".", " · ".join(short), metric


def _points(difference: float) -> int:
    """A difference of two rates in whole percentage points."""
    return int(round(100 * difference))


def _relative(value: float, base: float) -> int:
    """value against base in whole percent (negative: lower)."""
    if not base > 0:
        return 0
    return int(round(100 * (value - base) / base))


def _jsonable(value: Any) -> Any:  # noqa: ANN401
    """Plain JSON: no NaN or infinity (PostgreSQL's JSON refuses them), no numpy scalars."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
