"""Which model the Playground uses, and loading it once per file version.

`pick_model` is the one place that decides what a picker offers and returns: a completed run of
the current project, newest first, typed to search, with `?run=ID` (or another query key) as the
deep link. The model registry plugs in here ("a registered model, production by default")
without the page changing: the page only sees a `PickedModel` with a checkpoint path.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from dashboard import data
from dashboard.components.projects import current_project_id
from db import registry, run_query
from db.records import RunRecord
from db.registry import RegisteredModel
from engine.core.run_files import checkpoint_path, read_report
from engine.ml.predictor import Predictor

# The picker lists this many newest completed runs (plus a deep-linked one beyond them); typing
# in the box searches them.
PICKER_LIMIT = 500


@dataclass(frozen=True)
class PickedModel:
    run_id: int
    title: str
    checkpoint: Path
    dataset_id: int | None = None  # for example inputs; None when unknown


@dataclass
class LoadedModel:
    """A predictor shared by every session (cache_resource) and the lock that keeps two
    sessions from running it at once: explanations hook into its embedding layer."""

    predictor: Predictor
    lock: threading.Lock = field(default_factory=threading.Lock)


def _title(run: RunRecord) -> str:
    return f"#{run.id} {run.name} · {run.dataset_name} · {run.config.get('model', 'auto')}"


def completed_runs(db: Engine, project_id: int) -> list[RunRecord]:
    flt = run_query.RunFilter(project_id=project_id, statuses=("completed",))
    return run_query.query_runs(db, flt, sort="created_at", descending=True, limit=PICKER_LIMIT)


def pick_model(
    db: Engine,
    *,
    key: str,
    query_key: str = "run",
    label: str = "Model",
    compatible_with: PickedModel | None = None,
) -> PickedModel | None:
    """A registered model (its production version by default) or a completed run.

    Registered models come first when there are any and the URL does not name a run
    (`?model=NAME`, A/B: `?model_b=NAME`, pins a name). `compatible_with` (A/B's Model B):
    pre-select only a run that takes the same kind of input as that model.
    """
    models = registry.list_models(db)
    model_key = "model" if query_key == "run" else f"model_{query_key}"
    if models:
        wants_run = data.query_int(query_key) is not None and model_key not in st.query_params
        source = st.segmented_control(
            f"{label} from",
            ["Registered model", "Run"],
            default="Run" if wants_run else "Registered model",
            key=f"{key}_source",
            help="A registered model loads its production version unless you pick another.",
        )
        if source == "Registered model":
            st.query_params.pop(query_key, None)
            return _pick_registered(db, models, key=key, query_key=model_key, label=label)
    st.query_params.pop(model_key, None)
    return _pick_run(db, key=key, query_key=query_key, label=label, compatible_with=compatible_with)


def _pick_registered(
    db: Engine, models: list[RegisteredModel], *, key: str, query_key: str, label: str
) -> PickedModel | None:
    by_name = {m.name: m for m in models}
    linked = st.query_params.get(query_key)
    if st.session_state.get(f"{key}_name") not in by_name:
        with_production = [m.name for m in models if m.production is not None]
        st.session_state[f"{key}_name"] = (
            linked if linked in by_name else (with_production or list(by_name))[0]
        )
    name_col, version_col = st.columns([3, 2])
    name = name_col.selectbox(label, list(by_name), key=f"{key}_name")
    st.query_params[query_key] = name
    model = by_name[name]
    numbers = [v.version for v in model.versions]
    if st.session_state.get(f"{key}_version") not in numbers:
        st.session_state[f"{key}_version"] = model.default.version
    by_number = {v.version: v for v in model.versions}
    number = version_col.selectbox(
        "Version",
        numbers,
        format_func=lambda n: f"v{n} ({by_number[n].stage})",
        key=f"{key}_version",
    )
    version = by_number[number]
    found = run_query.runs_by_ids(db, [version.run_id])
    return PickedModel(
        version.run_id,
        f"{name} v{number} ({version.stage}) · run #{version.run_id}",
        checkpoint_path(data.get_settings(), version.run_id),
        found[0].dataset_id if found else None,
    )


def _dataset_kinds() -> dict[int, str]:
    return {d.id: d.kind for d in data.datasets()}


def _compatible(runs: list[RunRecord], other: PickedModel) -> int | None:
    """The newest run, other than `other`'s, that takes the same kind of input (one on the
    same dataset first); None when there is none."""
    kinds = _dataset_kinds()
    wanted = kinds.get(other.dataset_id) if other.dataset_id is not None else None
    fitting = [
        r
        for r in runs
        if r.id != other.run_id and wanted is not None and kinds.get(r.dataset_id) == wanted
    ]
    fitting.sort(key=lambda r: r.dataset_id != other.dataset_id)  # stable: newest first
    return fitting[0].id if fitting else None


def _pick_run(
    db: Engine,
    *,
    key: str,
    query_key: str = "run",
    label: str = "Model",
    compatible_with: PickedModel | None = None,
) -> PickedModel | None:
    """A select box of completed runs; the choice is mirrored in the URL under `query_key`.

    With no run in the URL the newest is picked, or with `compatible_with` (A/B's Model B) the
    newest that takes the same kind of input as that model — re-picked when Model A changes,
    until the user picks one. Returns None (having said why) when there is nothing to pick.
    """
    runs = completed_runs(db, current_project_id())
    linked = data.query_int(query_key)
    if linked is not None and linked not in {r.id for r in runs}:
        found = run_query.runs_by_ids(db, [linked])
        if not found:
            st.warning(f"There is no run #{linked}; pick another one.")
        elif found[0].status != "completed":
            st.warning(
                f"Run #{linked} is {found[0].status}: the Playground takes completed runs only."
            )
        else:
            runs = [found[0], *runs]  # another project's run, opened by its link
    if not runs:
        return None
    by_id = {r.id: r for r in runs}
    ids = list(by_id)
    # The run we picked (not the user): redone when Model A changes to another kind of input.
    auto_key = f"{key}_auto"
    chosen = st.session_state.get(key)
    stale = (
        compatible_with is not None
        and chosen in by_id
        and chosen == st.session_state.get(auto_key)
        and _compatible([by_id[chosen]], compatible_with) is None
    )
    if chosen not in by_id or stale:
        if linked in by_id and not stale:  # the URL mirrors the stale choice itself
            st.session_state[key] = linked
        elif compatible_with is not None:
            st.session_state[key] = st.session_state[auto_key] = _compatible(runs, compatible_with)
        else:
            st.session_state[key] = ids[0]
    run_id = st.selectbox(
        label,
        ids,
        format_func=lambda i: _title(by_id[i]),  # options are plain text, not markdown
        key=key,
        help="Completed runs of the current project, newest first. Type to search.",
        placeholder="Pick a run to compare",
    )
    if run_id is None:
        kind = _dataset_kinds().get(compatible_with.dataset_id or -1) if compatible_with else None
        st.info(
            f"No other completed run takes {kind or 'the same'} input like Model A, so none is "
            "picked: a model for other data cannot answer the same input. Train a second "
            "model on the same kind of data (e.g. clone Model A's run with other settings), "
            "then compare them here.",
            icon=":material/compare_arrows:",
        )
        st.query_params.pop(query_key, None)
        return None
    st.query_params[query_key] = str(run_id)
    return PickedModel(
        run_id,
        _title(by_id[run_id]),
        checkpoint_path(data.get_settings(), run_id),
        by_id[run_id].dataset_id,
    )


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _load(path: str, mtime_ns: int) -> LoadedModel:
    # Keyed on the file's mtime too: a run retrained in place gets a fresh predictor.
    return LoadedModel(Predictor.load(path))


def load_model(picked: PickedModel) -> LoadedModel:
    """The picked run's predictor (cached); PredictorError when its model file is gone/bad."""
    try:
        mtime = picked.checkpoint.stat().st_mtime_ns
    except OSError:
        mtime = -1  # Predictor.load then says the file is missing
    return _load(str(picked.checkpoint), mtime)


def test_metrics(run_id: int) -> dict[str, float]:
    """The run's test metrics from report.json (empty when the report is gone)."""
    report = read_report(data.get_settings(), run_id) or {}
    metrics = report.get("metrics")
    return {k: v for k, v in metrics.items() if isinstance(v, int | float)} if metrics else {}


def example_text(picked: PickedModel, column: str) -> str:
    """The first text of the run's dataset, to start the text box with; "" when it is gone."""
    record = next((d for d in data.datasets() if d.id == picked.dataset_id), None)
    if record is None:
        return ""
    try:
        texts = data.dataset_preview(record.id, record.path, rows=1)[column]
    except Exception:  # noqa: BLE001 (a deleted or unreadable data file: no example, no error)
        return ""
    return str(texts.iloc[0]) if len(texts) and pd.notna(texts.iloc[0]) else ""
