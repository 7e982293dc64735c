"""New run: a form over RunConfig (defaults and help come from it), submitted as a queued run.

`?dataset=ID` preselects a dataset; `?clone=RUN_ID` fills the form from a past run's config.
Fields this page does not place explicitly still get a widget (in Advanced), so a knob added
to RunConfig is usable here without touching this file.
"""

from typing import Any, Literal, get_args, get_origin

import streamlit as st
from annotated_types import Ge, Le

from dashboard import auth, data
from dashboard.components.projects import current_project_id
from db import runs as run_store
from db.records import DatasetRecord, RunRecord
from engine.core.catalog import DEFAULT_MODEL, MODEL_FAMILIES, TASKS, models_for_kind
from engine.core.config import RunConfig, field_help
from engine.core.defaults import suggest_for_dataset
from engine.services.launch import default_run_name
from engine.services.permissions import Permission
from engine.services.runs import launch_run

DATA_FIELDS = ["task", "val_fraction", "test_fraction", "seed"]
MODEL_FIELDS = ["model", "hidden_sizes", "activation", "dropout"]
TRAINING_FIELDS = [
    "optimizer",
    "learning_rate",
    "batch_size",
    "epochs",
    "weight_decay",
    "lr_schedule",
    "step_size",
    "gamma",
    "momentum",
]
OPTION_FIELDS = [
    "monitor",
    "early_stopping_patience",
    "restore_best_weights",
    "imbalance",
    "label_smoothing",
    "grad_clip_norm",
    "warmup_epochs",
]
ADVANCED_FIELDS = ["device", "compile", "processes", "max_categories"]
# --- text: shown (in their own section) for text datasets only
TEXT_FIELDS = [
    "max_length",
    "vocab_size",
    "min_frequency",
    "lowercase",
    "embedding_dim",
    "text_dropout",
    "rnn_hidden_size",
    "rnn_bidirectional",
    "text_layers",
    "transformer_heads",
    "transformer_ff_dim",
    "textcnn_filters",
    "textcnn_kernel_sizes",
]
# Shown only for image datasets, in their own section (three per row).
IMAGE_FIELDS = [
    "image_size",
    "channels",
    "normalize",
    "cnn_depth",
    "cnn_width",
    "resnet_blocks",
    "batch_norm",
    "augment_flip",
    "augment_crop",
    "augment_rotation",
    "augment_color",
    "data_loading",
    "loader_workers",
]

LABELS = {
    "task": "Task",
    "val_fraction": "Validation share",
    "test_fraction": "Test share",
    "seed": "Seed",
    "model": "Model family",
    "hidden_sizes": "Hidden sizes",
    "activation": "Activation",
    "dropout": "Dropout",
    "optimizer": "Optimizer",
    "learning_rate": "Learning rate",
    "batch_size": "Batch size",
    "epochs": "Epochs",
    "weight_decay": "Weight decay",
    "lr_schedule": "LR schedule",
    "step_size": "Step size (epochs)",
    "gamma": "Gamma (decay factor)",
    "momentum": "Momentum",
    "device": "Device",
    "compile": "torch.compile the model",
    "processes": "Data-parallel processes (DDP)",
    "data_loading": "Image loading",
    "loader_workers": "Loader workers (-1 = auto)",
    "max_categories": "Max categories per column",
    "image_size": "Image size (px, 0 = auto)",
    "channels": "Channels",
    "normalize": "Normalize channels",
    "cnn_depth": "Conv blocks / ResNet stages",
    "cnn_width": "Channels of the first block",
    "resnet_blocks": "ResNet blocks per stage",
    "batch_norm": "Batch norm",
    "augment_flip": "Random flip",
    "augment_crop": "Random crop (px)",
    "augment_rotation": "Random rotation (°)",
    "augment_color": "Colour jitter",
    "monitor": "Monitored metric",
    "early_stopping_patience": "Early stopping patience (epochs)",
    "restore_best_weights": "Keep the best epoch's weights",
    "imbalance": "Class imbalance",
    "label_smoothing": "Label smoothing",
    "grad_clip_norm": "Gradient clipping (max norm)",
    "warmup_epochs": "Warm-up epochs",
    "cpus": "CPUs per process (Ray executor)",
    "memory_gb": "Memory per process, GiB (Ray executor; 0 = no reservation)",
}
# Increments for the +/- buttons; the defaults (1.0 for floats) are useless for these knobs.
STEPS = {
    "val_fraction": 0.05,
    "test_fraction": 0.05,
    "dropout": 0.05,
    "learning_rate": 1e-4,
    "weight_decay": 1e-4,
    "momentum": 0.01,
    "gamma": 0.05,
    "augment_rotation": 5.0,
    "augment_color": 0.05,
    "label_smoothing": 0.05,
    "grad_clip_norm": 0.5,
}
KEY_PREFIX = "nr_"

auth.guard_page()
st.title("New run")
db = data.get_db()


def _label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def _bounds(name: str, value: float, kind: type) -> dict[str, Any]:
    """Inclusive RunConfig bounds as widget limits, so the spinner cannot leave them.

    Exclusive bounds (gt/lt) are left to validation: a widget cannot express them, and the
    validator's message names the field and the limit.
    """
    out: dict[str, Any] = {}
    for rule in RunConfig.model_fields[name].metadata:
        if isinstance(rule, Ge) and value >= rule.ge:
            out["min_value"] = kind(rule.ge)  # st.number_input wants one numeric type
        if isinstance(rule, Le) and value <= rule.le:
            out["max_value"] = kind(rule.le)
    return out


def _field_widget(name: str, value: Any, dataset: DatasetRecord) -> Any:
    """One widget for one RunConfig field, chosen by the field's type."""
    annotation = RunConfig.model_fields[name].annotation
    common = {"help": field_help(name) or None, "key": KEY_PREFIX + name}
    label = _label(name)
    if name == "model":
        # Only the families that train on this dataset's kind, and auto (the kind's default).
        options = ["auto", *models_for_kind(dataset.kind)]
        extra = "; ".join(f"{k}: {MODEL_FAMILIES[k][1]}" for k in options[1:])
        common["help"] = f"{common['help']} ({extra})"
        auto_label = f"auto → {DEFAULT_MODEL[dataset.kind]}"
        return st.selectbox(
            label,
            options,
            index=options.index(value) if value in options else 0,
            format_func=lambda o: auto_label if o == "auto" else o,
            **common,
        )
    if get_origin(annotation) is Literal:
        options = list(get_args(annotation))
        # Short labels (the box is narrow); the longer descriptions go into the tooltip.
        labels = {"task": {"auto": f"auto → {dataset.task}"}}.get(name, {})
        described = {"task": TASKS}.get(name)
        if described:
            extra = "; ".join(f"{k}: {v}" for k, v in described.items())
            common["help"] = f"{common['help'] or ''} ({extra})".strip()
        return st.selectbox(
            label,
            options,
            index=options.index(value) if value in options else 0,
            format_func=lambda o: labels.get(o, str(o)),
            **common,
        )
    if annotation is bool:
        return st.checkbox(label, value=bool(value), **common)
    if annotation is int:
        return st.number_input(
            label, value=int(value), step=1, **_bounds(name, value, int), **common
        )
    if annotation is float:
        return st.number_input(
            label,
            value=float(value),
            step=STEPS.get(name, 0.1),
            format="%g",
            **_bounds(name, value, float),
            **common,
        )
    if name == "hidden_sizes" or get_origin(annotation) is list:
        shown = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        return st.text_input(label, value=shown, placeholder="empty = a linear model", **common)
    return st.text_input(label, value="" if value is None else str(value), **common)


def _summary(dataset: DatasetRecord, values: dict[str, Any]) -> str:
    task = dataset.task if values.get("task") == "auto" else values.get("task")
    n = dataset.n_rows
    try:
        n_val = round(n * float(values["val_fraction"]))
        n_test = round(n * float(values["test_fraction"]))
        n_train = max(0, n - n_val - n_test)
        steps = -(-n_train // max(1, int(values["batch_size"])))
        family = DEFAULT_MODEL[dataset.kind] if values["model"] == "auto" else values["model"]
        model = f"**{family}**"
        if family == "mlp":  # the other families have their own sections above
            sizes = values["hidden_sizes"]
            shape = sizes if isinstance(sizes, str) else ",".join(map(str, sizes))
            model += (
                f" with hidden layers {data.md_text(shape or 'none (linear)')} "
                f"({values['activation']}, dropout {values['dropout']:g})"
            )
        elif dataset.kind == "image":
            side = values["image_size"] or dataset.schema.get("auto_image_size")
            model += (
                f" ({values['cnn_depth']} blocks from width {values['cnn_width']} on {side} px)"
            )
        return (
            f"{model} learns **{task}** on "
            f"**{data.md_text(dataset.name)}** (target {data.md_text(dataset.target)}): "
            f"{n_train:,} train / {n_val:,} validation / {n_test:,} test rows.  \n"
            f"{values['optimizer']} at learning rate {values['learning_rate']:g} "
            f"({values['lr_schedule']} schedule) for {values['epochs']} epochs of "
            f"{steps:,} steps (batch {values['batch_size']}), on device {values['device']}."
        )
    except (KeyError, TypeError, ValueError):  # a value the validator will reject on submit
        return "Fix the values above to see a summary."


def _defaults(dataset: DatasetRecord, source: RunRecord | None) -> dict[str, Any]:
    """What the form starts from: a cloned run's config, or the settings suggested for this
    dataset's kind and size (the same ones `seedlab runs submit` fills in)."""
    defaults: dict[str, Any] = RunConfig().model_dump(mode="json")
    if source is not None:
        # Only fields this version knows: a config stored by an older or newer Seedlab may
        # hold others, and RunConfig forbids unknown fields.
        defaults.update({k: v for k, v in source.config.items() if k in defaults})
    else:
        defaults.update(suggest_for_dataset(dataset))
    return defaults


def _sync_dataset_param() -> None:
    # Keep ?dataset= in step with the choice, or the URL would switch it back on the next rerun.
    st.query_params["dataset"] = str(st.session_state[KEY_PREFIX + "dataset"])


# ---------------------------------------------------------------- what to prefill

records = data.datasets()
if not records:
    st.info(
        "No datasets yet — a run needs one. Add a table on **Datasets**, or queue a demo run "
        "from **Home**.",
        icon=":material/info:",
    )
    st.page_link(data.DATASETS_PAGE, label="Go to Datasets", icon=":material/table:")
    st.page_link(data.HOME_PAGE, label="Go to Home", icon=":material/home:")
    st.stop()
by_id = {r.id: r for r in records}

source: RunRecord | None = None
clone_id = data.query_int("clone")
if clone_id is not None:
    source = run_store.get_run(db, clone_id)
    if source is None:
        st.warning(f"Run #{clone_id} does not exist; starting from the defaults.")
    else:
        st.info(
            f"Cloning run #{source.id} ({data.md_text(source.name)}). Change what you like, "
            "then start it as a new run.",
            icon=":material/content_copy:",
        )

# Widgets keep their state while the page stays open; a different clone source must refill them.
if st.session_state.get("_nr_source") != clone_id:
    for key in [k for k in st.session_state if str(k).startswith(KEY_PREFIX)]:
        del st.session_state[key]
    st.session_state["_nr_source"] = clone_id

wanted = data.query_int("dataset")
if wanted in by_id:
    st.session_state[KEY_PREFIX + "dataset"] = wanted
elif st.session_state.get(KEY_PREFIX + "dataset") not in by_id:
    st.session_state[KEY_PREFIX + "dataset"] = (
        source.dataset_id if source is not None and source.dataset_id in by_id else records[-1].id
    )

if not data.engine_alive(db):
    st.warning(
        f"The engine is not running: a new run waits in the queue until it starts. "
        f"{data.ENGINE_HINT}",
        icon=":material/power_off:",
    )

# ---------------------------------------------------------------- the form

form_col, summary_col = st.columns([3, 2], gap="large")
with form_col:
    st.subheader("Data")
    # Outside the form: the task choices and the summary depend on the dataset.
    dataset_id = st.selectbox(
        "Dataset",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name}  ·  {by_id[i].task}  ·  {by_id[i].n_rows:,} rows",
        key=KEY_PREFIX + "dataset",
        help="The table to train on; add one on the Datasets page.",
        on_change=_sync_dataset_param,
    )
    dataset = by_id[dataset_id]
    defaults = _defaults(dataset, source)
    # A different dataset gets its own suggestions: refill the fields (not the dataset choice).
    if st.session_state.get("_nr_filled_for") != dataset_id:
        for key in [k for k in st.session_state if str(k).startswith(KEY_PREFIX)]:
            if key != KEY_PREFIX + "dataset":
                del st.session_state[key]
        st.session_state["_nr_filled_for"] = dataset_id
    values: dict[str, Any] = {}
    with st.form("new_run_form", border=False):
        for row in (DATA_FIELDS[:2], DATA_FIELDS[2:]):
            for col, name in zip(st.columns(len(row)), row, strict=True):
                with col:
                    values[name] = _field_widget(name, defaults[name], dataset)

        st.subheader("Model")
        for row in (MODEL_FIELDS[:2], MODEL_FIELDS[2:]):
            for col, name in zip(st.columns(len(row)), row, strict=True):
                with col:
                    values[name] = _field_widget(name, defaults[name], dataset)

        if dataset.kind == "text":  # --- text
            st.subheader("Text")
            st.caption(
                "Tokenizer (fitted on the training texts) and text-model sizes; each model family "
                "uses the fields its name starts with. Hidden sizes and activation are MLP-only."
            )
            for start in range(0, len(TEXT_FIELDS), 3):
                row = TEXT_FIELDS[start : start + 3]
                for col, name in zip(st.columns(3)[: len(row)], row, strict=True):
                    with col:
                        values[name] = _field_widget(name, defaults[name], dataset)

        if dataset.kind == "image":
            st.subheader("Images")
            for row in (IMAGE_FIELDS[i : i + 3] for i in range(0, len(IMAGE_FIELDS), 3)):
                for col, name in zip(st.columns(3), row, strict=False):
                    with col:
                        values[name] = _field_widget(name, defaults[name], dataset)
            st.caption(
                "Augmentation changes training images only, at random, on the training device. "
                "Flip suits photos, not digits or text."
            )

        st.subheader("Training")
        for row in (TRAINING_FIELDS[:3], TRAINING_FIELDS[3:6], TRAINING_FIELDS[6:]):
            for col, name in zip(st.columns(3), row, strict=True):
                with col:
                    values[name] = _field_widget(name, defaults[name], dataset)
        st.caption("Step size and gamma apply to the step schedule; momentum to SGD.")

        st.subheader("Stopping and regularisation")
        for row in (OPTION_FIELDS[:3], OPTION_FIELDS[3:6], OPTION_FIELDS[6:]):
            for col, name in zip(st.columns(3), row, strict=False):
                with col:
                    values[name] = _field_widget(name, defaults[name], dataset)

        placed = {
            *DATA_FIELDS,
            *MODEL_FIELDS,
            *TRAINING_FIELDS,
            *OPTION_FIELDS,
            *ADVANCED_FIELDS,
            *TEXT_FIELDS,
            *IMAGE_FIELDS,
        }
        extra = [name for name in defaults if name not in placed]
        with st.expander("Advanced", expanded=False):
            for name in [*ADVANCED_FIELDS, *extra]:
                values[name] = _field_widget(name, defaults[name], dataset)
            run_name = st.text_input(
                "Run name",
                max_chars=200,
                placeholder="automatic, e.g. " + default_run_name(dataset, RunConfig()),
                key=KEY_PREFIX + "run_name",
                help="How the run is listed; leave empty for a name built from its settings.",
            )
        submitted = st.form_submit_button(
            "Start training",
            type="primary",
            icon=":material/play_arrow:",
            disabled=not auth.can(Permission.LAUNCH),
            help=None if auth.can(Permission.LAUNCH) else "Your role cannot launch runs.",
        )

with summary_col:
    st.subheader("What will run")
    st.markdown(_summary(dataset, values))
    st.caption(
        "With the values as the form shows them when last submitted or opened; "
        "edits apply when you press **Start training**."
    )
    if source is not None:
        st.caption(f"Parent run: #{source.id}")

if submitted:
    with form_col, data.shown_errors("queuing the run"):
        run_id = launch_run(
            db,
            auth.require(Permission.LAUNCH),
            dataset.id,
            values,
            name=run_name,
            parent_run_id=source.id if source is not None else None,
            project_id=current_project_id(),  # the sidebar's project
        )
        data.clear_caches()
        data.open_run(run_id)
