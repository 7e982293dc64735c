"""New run: the short path — dataset, model family, a Quick / Balanced / Thorough preset — and
every other RunConfig field under Advanced, each with its default and help from RunConfig.

`?dataset=ID` preselects a dataset; `?clone=RUN_ID` fills the form from a past run's config.
A field shows only where it changes something (engine/core/run_fields.py: a CNN's depth for
cnn/resnet, text fields for text data, momentum for SGD). Fields this page does not place
explicitly still get a widget (at the end of Advanced), so a knob added to RunConfig is usable
here without touching this file. No st.form: the family and preset must rerun the page to show
their fields, and each value is checked as it is entered — an invalid one gets a sentence
beside its field (engine.core.config.config_problems, in this form's labels), and Start
training refuses with the same sentences instead of doing nothing.
"""

from typing import Any, Literal, get_args, get_origin

import streamlit as st

from dashboard import auth, data
from dashboard.components.projects import current_project_id
from dashboard.components.recipe_form import recipe_form
from db import runs as run_store
from db.records import DatasetRecord, RunRecord
from engine.core.catalog import DEFAULT_MODEL, TASKS, family_description, models_for_kind
from engine.core.config import ConfigProblem, RunConfig, config_problems, field_help
from engine.core.family_defaults import family_default_fields
from engine.core.presets import (
    DEFAULT_PRESET,
    PRESET_NAMES,
    PRESETS,
    SIZES,
    preset_fields,
    preset_for_dataset,
)
from engine.core.pretrained import FAMILY as PRETRAINED
from engine.core.pretrained import (
    base_model_label,
    default_base_model,
    default_learning_rate_for,
    known_good,
    modes_for,
)
from engine.core.run_fields import field_applies
from engine.ml.pretrained_source import base_model_problem
from engine.services.dataset_versions import list_versions
from engine.services.launch import dataset_problems, default_run_name
from engine.services.permissions import Permission
from engine.services.recipes import list_recipes
from engine.services.runs import launch_run

DATA_FIELDS = ["task", "val_fraction", "test_fraction", "seed", "max_categories"]
MODEL_FIELDS = ["hidden_sizes", "activation", "dropout"]
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
HARDWARE_FIELDS = ["device", "compile", "processes"]
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
    "head_hidden",
    "lora_rank",
]
# The pretrained encoder's choices, drawn on the short path beside the family (not Advanced).
PRETRAINED_FIELDS = ["base_model", "encoder_mode"]
# New run's base model choices besides the known-good list.
OTHER_HUB, LOCAL_FOLDER = "hub", "local"
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
    "base_model": "Base model",
    "encoder_mode": "What trains",
    "head_hidden": "Head hidden units (0 = linear)",
    "lora_rank": "LoRA rank",
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
    "max_length": "Max length (tokens)",
    "vocab_size": "Vocabulary size",
    "min_frequency": "Min word frequency",
    "lowercase": "Lower-case texts",
    "embedding_dim": "Embedding width",
    "text_dropout": "Text dropout",
    "rnn_hidden_size": "RNN hidden units",
    "rnn_bidirectional": "Bidirectional RNN",
    "text_layers": "Layers",
    "transformer_heads": "Attention heads",
    "transformer_ff_dim": "Feed-forward width",
    "textcnn_filters": "TextCNN filters",
    "textcnn_kernel_sizes": "TextCNN kernel sizes",
    "distill_from": "Teacher run (distillation)",
    "distill_temperature": "Distillation temperature",
    "distill_alpha": "Distillation weight",
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

PRESET_KEY = KEY_PREFIX + "preset"
# The fields of the short path, above Advanced; kept when the dataset changes.
SHORT_PATH = ("dataset", "preset")
LR_FOR = "_nr_lr_for"  # the family the learning rate field was filled for

auth.guard_page()
st.title("New run")
db = data.get_db()

# "Recipe": the team's own script registered on the server, a mode of its own
# (dashboard/components/recipe_form.py); offered once a recipe exists.
_clone_run = run_store.get_run(db, data.query_int("clone") or 0)
_recipe_clone = _clone_run if _clone_run is not None and _clone_run.source == "recipe" else None
if _recipe_clone is not None or st.query_params.get("recipe") or list_recipes(db):
    _modes = ["Seedlab model", "Recipe (your script)"]
    _mode = st.radio(
        "What to run",
        _modes,
        index=1 if _recipe_clone is not None or st.query_params.get("recipe") else 0,
        horizontal=True,
        key="_nr_mode",
        help="A model Seedlab builds from your settings, or a registered training script.",
    )
    if _mode == _modes[1]:
        recipe_form(_recipe_clone)
        st.stop()
    if _recipe_clone is not None:
        st.info(f"Run #{_recipe_clone.id} ran a recipe; choose **Recipe** above to clone it.")
        st.stop()


def _label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def _field_widget(name: str, value: Any, dataset: DatasetRecord) -> Any:  # noqa: ANN401
    """One widget for one RunConfig field, chosen by the field's type.

    Numbers get no min/max: a widget would clamp an out-of-range entry silently (or only draw a
    red outline); validation says what is allowed instead, beside the field.
    """
    annotation = RunConfig.model_fields[name].annotation
    common = {"help": field_help(name) or None, "key": KEY_PREFIX + name}
    label = _label(name)
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
        return st.number_input(label, value=int(value), step=1, **common)
    if annotation is float:
        return st.number_input(
            label, value=float(value), step=STEPS.get(name, 0.1), format="%g", **common
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
        elif family == PRETRAINED:
            model += (
                f" ({data.md_text(base_model_label(str(values['base_model'])))}, "
                f"{modes_for(dataset.kind)[values['encoder_mode']].split(' (')[0]})"
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
    except (KeyError, TypeError, ValueError):  # a value the validator rejects
        return "Fix the values marked in the form to see a summary."


def _defaults(
    dataset: DatasetRecord, source: RunRecord | None, preset: str | None, model: str
) -> dict[str, Any]:
    """What the fields start from: a cloned run's config, or the chosen preset for this
    dataset and model family (the values `seedlab runs submit --preset` uses)."""
    defaults: dict[str, Any] = RunConfig().model_dump(mode="json")
    if source is not None:
        # Only fields this version knows: a config stored by an older or newer Seedlab may
        # hold others, and RunConfig forbids unknown fields.
        defaults.update({k: v for k, v in source.config.items() if k in defaults})
    if preset is not None:
        defaults.update(preset_for_dataset(preset, dataset, model))
    defaults["model"] = model
    return defaults


def _sync_dataset_param() -> None:
    # Keep ?dataset= in step with the choice, or the URL would switch it back on the next rerun.
    st.query_params["dataset"] = str(st.session_state[KEY_PREFIX + "dataset"])


def _forget(names: set[str]) -> None:
    """Drop these fields' widget state, so they refill from the new defaults."""
    for name in names:
        st.session_state.pop(KEY_PREFIX + name, None)


def _preset_changed() -> None:
    # A preset sets epochs, patience, batch and model sizes: show its values, not the old ones.
    _forget(preset_fields())


def _model_changed() -> None:
    # Each family has its own sizes under the preset (a CNN's width, an LSTM's hidden units).
    _forget({k for family in SIZES.values() for level in family.values() for k in level})
    # A pretrained encoder has its own learning rates (per mode): refill it to or from one.
    if PRETRAINED in (st.session_state.get(KEY_PREFIX + "model"), st.session_state.get(LR_FOR)):
        _forget({"learning_rate"})
    _forget(family_default_fields())  # and its own learning rate (engine/core/family_defaults)


def _mode_changed() -> None:
    _forget({"learning_rate"})  # each mode has its own default rate


@st.cache_data(ttl=60, show_spinner=False)
def _base_model_problem(ref: str, home: str, kind: str = "text") -> str | None:
    # Cached: a hub id that is not cached asks the hub (a few seconds at most) once a minute.
    return base_model_problem(ref, data.get_settings(), kind)


def _pretrained_choice(source: RunRecord | None, kind: str = "text") -> dict[str, Any]:
    """Base model (a known-good one, another hub id, a local folder) and what trains; an
    image dataset gets vision backbones and their modes (no LoRA)."""
    offered = known_good(kind)
    start = str(
        (source.config if source is not None else {}).get("base_model", default_base_model(kind))
    )
    choices = [*offered, OTHER_HUB, LOCAL_FOLDER]
    if start in offered:
        first, typed = start, ""
    else:
        looks_local = start.startswith(("/", ".", "~"))
        first, typed = (LOCAL_FOLDER if looks_local else OTHER_HUB), start
    other = {OTHER_HUB: "Another Hugging Face hub id…", LOCAL_FOLDER: "A local model folder…"}
    choice = st.selectbox(
        _label("base_model"),
        choices,
        index=choices.index(first),
        format_func=lambda c: other.get(c) or offered[c],
        key=KEY_PREFIX + "base_choice",
        help=field_help("base_model"),
    )
    base_model = choice
    if choice in (OTHER_HUB, LOCAL_FOLDER):
        base_model = st.text_input(
            "Hub id" if choice == OTHER_HUB else "Model folder",
            value=typed,
            placeholder=(
                "e.g. distilbert/distilbert-base-uncased"
                if kind != "image"
                else "e.g. facebook/convnext-tiny-224"
            )
            if choice == OTHER_HUB
            else (
                "e.g. /models/my-bert (config.json + model.safetensors)"
                if kind != "image"
                else "e.g. /models/my-resnet (config.json, model.safetensors, "
                "preprocessor_config.json)"
            ),
            key=KEY_PREFIX + "base_model",
            help="Downloaded once into SEEDLAB_HOME/models when the machine is online"
            if choice == OTHER_HUB
            else "A folder written by save_pretrained, on the machine that runs the engine.",
        ).strip()
    if base_model:
        problem = _base_model_problem(base_model, str(data.get_settings().home), kind)
        if problem:
            st.warning(data.md_message(problem), icon=":material/cloud_off:")
    mode_words = modes_for(kind)
    modes = list(mode_words)
    start_mode = str((source.config if source is not None else {}).get("encoder_mode", "frozen"))
    mode = st.radio(
        _label("encoder_mode"),
        modes,
        index=modes.index(start_mode) if start_mode in modes else 0,
        format_func=lambda m: {
            "frozen": "Frozen backbone" if kind == "image" else "Frozen encoder",
            "lora": "LoRA",
            "full": "Full",
        }[m],
        captions=[mode_words[m] for m in modes],
        horizontal=True,
        key=KEY_PREFIX + "encoder_mode",
        help=field_help("encoder_mode"),
        on_change=_mode_changed,
    )
    return {"base_model": base_model, "encoder_mode": mode}


def _section(
    title: str, names: list[str], dataset: DatasetRecord, defaults: dict[str, Any]
) -> dict[str, Any]:
    """A heading and the fields of `names` that apply (three per row), each row with a slot
    under it for its fields' errors (full width: a sentence in a third of the form is a column
    of single words); returns their values. Nothing at all when none applies."""

    def current(field: str) -> Any:  # noqa: ANN401 - the widget's value, or its default
        return st.session_state.get(KEY_PREFIX + field, defaults.get(field))

    known = {field: current(field) for field in defaults}
    shown = [name for name in names if field_applies(name, dataset.kind, known)]
    if not shown:
        return {}
    st.subheader(title)
    values: dict[str, Any] = {}
    for start in range(0, len(shown), 3):
        row = shown[start : start + 3]
        for col, name in zip(st.columns(3)[: len(row)], row, strict=True):
            with col:
                values[name] = _field_widget(name, defaults[name], dataset)
        below = st.container()
        slots.update(dict.fromkeys(row, below))
    return values


def _show_problems(problems: list[ConfigProblem]) -> list[str]:
    """Each sentence beside the field(s) it is about; returns those with no field on show."""
    unplaced = []
    for problem in problems:
        rows = {id(slots[f]): slots[f] for f in problem.fields if f in slots}  # once per row
        for slot in rows.values():
            slot.error(data.md_message(problem.sentence), icon=":material/error:")
        if not rows:
            unplaced.append(problem.sentence)
    return unplaced


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

# ?version=N (from "Retrain on version N"): the clone trains on that version of its dataset.
retrain_version = data.query_int("version") if source is not None else None
if retrain_version is not None:
    st.caption(
        f"It trains on version {retrain_version} of its dataset; run #{source.id} trained on "
        f"version {source.dataset_version or 1}."
    )

# Widgets keep their state while the page stays open; a different clone source must refill them.
if st.session_state.get("_nr_source") != clone_id:
    for key in [k for k in st.session_state if str(k).startswith(KEY_PREFIX)]:
        del st.session_state[key]
    st.session_state["_nr_source"] = clone_id
if PRESET_KEY not in st.session_state:
    # A clone starts from its run's settings; picking a preset then replaces epochs and sizes.
    st.session_state[PRESET_KEY] = None if source is not None else DEFAULT_PRESET

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

slots: dict[str, Any] = {}  # field -> the container under its row, for its error
form_col, summary_col = st.columns([3, 2], gap="large")
with form_col:
    dataset_id = st.selectbox(
        "Dataset",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name}  ·  {by_id[i].task}  ·  {by_id[i].n_rows:,} rows",
        key=KEY_PREFIX + "dataset",
        help="The table to train on; add one on the Datasets page.",
        on_change=_sync_dataset_param,
    )
    dataset = by_id[dataset_id]
    # Which version to train on (only asked once there is more than one): the latest unless
    # cloning a run on this dataset, which keeps its run's version.
    versions = [v.number for v in reversed(list_versions(db, dataset_id))]
    version_number = versions[0]
    if len(versions) > 1:
        start_version = (
            (retrain_version or source.dataset_version or 1)  # ?version=N: "Retrain on version N"
            if source is not None and source.dataset_id == dataset_id
            else versions[0]
        )
        version_number = st.selectbox(
            "Dataset version",
            versions,
            index=versions.index(start_version) if start_version in versions else 0,
            format_func=lambda n: f"version {n}" + (" (latest)" if n == versions[0] else ""),
            key=f"{KEY_PREFIX}version_{dataset_id}",
            help="Each edit of a dataset makes a new version; the run records the one it "
            "trains on.",
        )
    # A different dataset gets its own suggestions: refill the fields (not the short path).
    if st.session_state.get("_nr_filled_for") != dataset_id:
        for key in [k for k in st.session_state if str(k).startswith(KEY_PREFIX)]:
            # The version choice is drawn above and keyed per dataset: deleting its state
            # here would leave the drawn widget without one (AppTest's next click fails).
            name = key.removeprefix(KEY_PREFIX)
            if name not in SHORT_PATH and not name.startswith("version_"):
                del st.session_state[key]
        st.session_state["_nr_filled_for"] = dataset_id

    # Only the families that train on this dataset's kind, and auto (the kind's default).
    families = ["auto", *models_for_kind(dataset.kind)]
    start_model = source.config.get("model", "auto") if source is not None else "auto"
    auto_label = f"auto → {DEFAULT_MODEL[dataset.kind]}"
    model = st.selectbox(
        _label("model"),
        families,
        index=families.index(start_model) if start_model in families else 0,
        format_func=lambda o: auto_label if o == "auto" else o,
        key=KEY_PREFIX + "model",
        help=f"{field_help('model')} ("
        + "; ".join(f"{k}: {family_description(k, dataset.kind)}" for k in families[1:])
        + ")",
        on_change=_model_changed,
    )
    chosen: dict[str, Any] = {}
    if model == PRETRAINED:
        st.subheader("Pretrained backbone" if dataset.kind == "image" else "Pretrained encoder")
        chosen = _pretrained_choice(source, dataset.kind)
    st.session_state[LR_FOR] = model
    preset = st.radio(
        "Preset",
        PRESET_NAMES,
        format_func=lambda name: PRESETS[name].label,
        captions=[PRESETS[name].description for name in PRESET_NAMES],
        horizontal=True,
        key=PRESET_KEY,
        help="How long to train and how big a model, in one choice; every value it sets is "
        "under Advanced, where you can change it.",
        on_change=_preset_changed,
    )
    if preset is None and source is not None:
        st.caption(f"Settings of run #{source.id}; pick a preset to replace its epochs and sizes.")
    defaults = _defaults(dataset, source, preset, model)
    if chosen:
        cloned_mode = source.config.get("encoder_mode") if source is not None else None
        if source is None or cloned_mode != chosen["encoder_mode"]:
            # The family's own rate for this mode (a clone keeps its run's, same mode).
            defaults["learning_rate"] = default_learning_rate_for(
                dataset.kind, chosen["encoder_mode"]
            )

    values: dict[str, Any] = {"model": model, **chosen}
    with st.expander("Advanced", expanded=False):
        st.caption("Every value below starts from the preset; change any of them.")
        values |= _section("Data", DATA_FIELDS, dataset, defaults)
        values |= _section("Model", MODEL_FIELDS, dataset, defaults)
        if dataset.kind == "text":
            values |= _section("Text", TEXT_FIELDS, dataset, defaults)
            st.caption(
                "The encoder's own tokenizer (up to max length tokens) and the new head's size."
                if model == PRETRAINED
                else "Tokenizer (fitted on the training texts) and the chosen model's sizes."
            )
        if dataset.kind == "image":
            values |= _section("Images", IMAGE_FIELDS, dataset, defaults)
            st.caption(
                "Augmentation changes training images only, at random, on the training device. "
                "Flip suits photos, not digits or text."
            )
        values |= _section("Training", TRAINING_FIELDS, dataset, defaults)
        values |= _section("Stopping and regularisation", OPTION_FIELDS, dataset, defaults)
        placed = {
            "model",
            *DATA_FIELDS,
            *MODEL_FIELDS,
            *TRAINING_FIELDS,
            *OPTION_FIELDS,
            *HARDWARE_FIELDS,
            *TEXT_FIELDS,
            *IMAGE_FIELDS,
            *PRETRAINED_FIELDS,
        }
        extra = [name for name in defaults if name not in placed]
        values |= _section("Hardware and more", [*HARDWARE_FIELDS, *extra], dataset, defaults)
        run_name = st.text_input(
            "Run name",
            max_chars=200,
            placeholder="automatic, e.g. " + default_run_name(dataset, RunConfig()),
            key=KEY_PREFIX + "run_name",
            help="How the run is listed; leave empty for a name built from its settings.",
        )
    # Fields that do not apply to this data or family keep their defaults (unused by training).
    values = {**{k: v for k, v in defaults.items() if k not in values}, **values}
    problems = config_problems(values, LABELS | {"model": _label("model")})
    if not problems:  # valid values: what this dataset refuses, beside its field too
        problems = dataset_problems(RunConfig.model_validate(values), dataset)
    unplaced = _show_problems(problems)
    submitted = st.button(
        "Start training",
        type="primary",
        icon=":material/play_arrow:",
        disabled=not auth.can(Permission.LAUNCH),
        help=None if auth.can(Permission.LAUNCH) else "Your role cannot launch runs.",
    )
    if problems and not submitted:
        st.caption(
            f":red[{len(problems)} value(s) under Advanced need fixing before the run can start.]"
        )

with summary_col:
    st.subheader("What will run")
    if problems:
        st.markdown("Fix the values marked in the form to see a summary.")
    else:
        st.markdown(_summary(dataset, values))
        if preset is not None:
            st.caption(f"Preset **{PRESETS[preset].label}**: {PRESETS[preset].description}.")
    if source is not None:
        st.caption(f"Parent run: #{source.id}")

if submitted:
    with form_col:
        if problems:
            # Never a silent refusal: every sentence, also those beside fields folded away.
            sentences = "\n".join(f"- {data.md_message(p.sentence)}" for p in problems)
            st.error(
                f"The run was not started: {len(problems)} value(s) to fix first.\n\n{sentences}",
                icon=":material/error:",
            )
        else:
            with data.shown_errors("queuing the run"):
                run_id = launch_run(
                    db,
                    auth.require(Permission.LAUNCH),
                    dataset.id,
                    values,
                    dataset_version=version_number,
                    name=run_name,
                    parent_run_id=source.id if source is not None else None,
                    project_id=current_project_id(),  # the sidebar's project
                )
                data.clear_caches()
                data.open_run(run_id)
elif unplaced:
    with form_col:
        st.error(" ".join(data.md_message(s) for s in unplaced), icon=":material/error:")
