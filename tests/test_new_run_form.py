"""New run form: the short path (dataset, model family, preset), fields per family, and a
sentence in the form's words for every invalid value; `seedlab runs submit --preset` and the
CLI's readable config errors. AppTest on real SQLite; the CLI through its real entry point."""

from __future__ import annotations

from typing import Any

import pytest
from streamlit.testing.v1.element_tree import Block

from db import runs as run_store
from engine.core.config import config_problems
from engine.core.presets import PRESET_NAMES, preset_config, preset_for_dataset
from engine.services.launch import find_dataset
from tests.support.commands import seedlab_in_process
from tests.support.pages import button, open_page, texts

PAGE = "views/new_run.py"


def _keys(block: Any) -> set[str]:  # noqa: ANN401 - an AppTest block or the whole page
    widgets = [
        *block.selectbox,
        *block.number_input,
        *block.text_input,
        *block.checkbox,
        *block.radio,
    ]
    return {str(w.key).removeprefix("nr_") for w in widgets if str(w.key).startswith("nr_")}


def _open(db, dataset: str):  # noqa: ANN001, ANN202
    return open_page(PAGE, dataset=str(find_dataset(db, dataset).id))


def _advanced(at):  # noqa: ANN001, ANN202
    (advanced,) = [e for e in at.expander if e.label == "Advanced"]
    return advanced


def _errors_under_row_of(at, key: str) -> str:  # noqa: ANN001
    """The error sentences shown right under the row of fields that holds widget `key`."""
    rows = [b for b in _advanced(at).children.values() if isinstance(b, Block)]
    for here, below in zip(rows, rows[1:], strict=False):
        if key in _keys(here):  # the row of columns; `below`: the container under it
            return texts(below.error)
    raise AssertionError(f"no row holds nr_{key}")


# ---------------------------------------------------------------- the short path


def test_short_path_is_dataset_family_and_preset_the_rest_under_advanced(
    settings, db, demo_datasets
):
    at = _open(db, "iris")
    advanced = _advanced(at)
    outside = _keys(at) - _keys(advanced)
    assert outside == {"dataset", "model", "preset"}
    assert at.radio(key="nr_preset").value == "balanced"
    assert [o for o in at.radio(key="nr_preset").options] == ["Quick", "Balanced", "Thorough"]
    assert {"epochs", "learning_rate", "batch_size", "hidden_sizes", "run_name"} <= _keys(advanced)
    assert not at.error
    # Three choices and a click: a run with the preset's settings.
    button(at, "Start training").click().run()
    assert not at.exception and not at.error, texts(at.error)
    (run,) = run_store.list_runs(db)
    balanced = preset_for_dataset("balanced", find_dataset(db, "iris"))
    assert {k: run.config[k] for k in balanced} == balanced


@pytest.mark.parametrize("preset", ["quick", "thorough"])
def test_preset_fills_epochs_patience_and_size_and_is_queued(settings, db, demo_datasets, preset):
    iris = find_dataset(db, "iris")
    expected = preset_config(preset, "tabular", iris.n_rows, "auto")
    at = _open(db, "iris")
    at.radio(key="nr_preset").set_value(preset).run()
    assert at.number_input(key="nr_epochs").value == expected["epochs"]
    patience = at.number_input(key="nr_early_stopping_patience").value
    assert patience == expected["early_stopping_patience"]
    shown = at.text_input(key="nr_hidden_sizes").value
    assert shown == ",".join(map(str, expected["hidden_sizes"]))
    # An Advanced field changed after the preset wins over it.
    at.number_input(key="nr_learning_rate").set_value(0.01)
    button(at, "Start training").click().run()
    assert not at.error, texts(at.error)
    (run,) = run_store.list_runs(db)
    assert run.config["epochs"] == expected["epochs"]
    assert run.config["hidden_sizes"] == expected["hidden_sizes"]
    assert run.config["learning_rate"] == 0.01


def test_presets_order_by_length_and_size_for_every_family():
    for kind, family in [("tabular", "mlp"), ("text", "lstm"), ("image", "resnet")]:
        quick, balanced, thorough = (preset_config(p, kind, 2000, family) for p in PRESET_NAMES)
        assert quick["epochs"] < balanced["epochs"] < thorough["epochs"]
        assert quick["early_stopping_patience"] <= thorough["early_stopping_patience"]
        assert config_problems(quick) == config_problems(thorough) == []
    assert (
        preset_config("quick", "image", 2000, "resnet")["cnn_width"]
        < preset_config("thorough", "image", 2000, "resnet")["cnn_width"]
    )


# ---------------------------------------------------------------- fields per family


def test_fields_belong_to_their_family(settings, db, demo_datasets):
    at = _open(db, "iris")
    shown = _keys(at)
    assert {"hidden_sizes", "activation", "max_categories"} <= shown
    assert not {"cnn_depth", "resnet_blocks", "embedding_dim", "max_length"} & shown
    assert "momentum" not in shown  # AdamW ignores it
    at.selectbox(key="nr_optimizer").set_value("sgd").run()
    assert "momentum" in _keys(at)

    at = _open(db, "support_tickets")
    assert "Text" in texts(at.subheader)
    textcnn = _keys(at)
    assert {"max_length", "embedding_dim", "textcnn_filters"} <= textcnn
    assert not {"hidden_sizes", "rnn_hidden_size", "transformer_heads", "cnn_depth"} & textcnn
    at.selectbox(key="nr_model").set_value("lstm").run()
    lstm = _keys(at)
    assert {"rnn_hidden_size", "rnn_bidirectional", "text_layers"} <= lstm
    assert not {"textcnn_filters", "transformer_heads"} & lstm
    # The preset's sizes follow the family.
    assert at.number_input(key="nr_rnn_hidden_size").value == 128
    at.radio(key="nr_preset").set_value("quick").run()
    assert at.number_input(key="nr_rnn_hidden_size").value == 64
    button(at, "Start training").click().run()
    assert not at.error, texts(at.error)
    (run,) = run_store.list_runs(db)
    assert run.config["model"] == "lstm" and run.config["rnn_hidden_size"] == 64


def test_image_fields_for_cnn_and_resnet_only(settings, db):
    from engine.data.demo import register_demo_datasets

    register_demo_datasets(settings, db, images=True)
    at = _open(db, "digits")
    cnn = _keys(at)
    assert {"cnn_depth", "cnn_width", "batch_norm", "image_size"} <= cnn
    assert not {"resnet_blocks", "hidden_sizes", "max_length"} & cnn
    at.selectbox(key="nr_model").set_value("resnet").run()
    assert {"cnn_depth", "resnet_blocks"} <= _keys(at)


# ---------------------------------------------------------------- invalid values

INVALID = [
    (
        "epochs",
        10_000_000,
        "Epochs must be a whole number between 1 and 10,000; 10,000,000 is too large.",
    ),
    (
        "learning_rate",
        1000.0,
        "Learning rate must be more than 0 and at most 10; 1,000 is too large.",
    ),
    ("batch_size", 0, "Batch size must be a whole number between 1 and 65,536; 0 is too small."),
    (
        "val_fraction",
        0.6,
        "Validation share must be more than 0 and less than 0.5; 0.6 is too large.",
    ),
    ("dropout", 1.0, "Dropout must be at least 0 and less than 1; 1 is too large."),
]


@pytest.mark.parametrize(("field", "value", "sentence"), INVALID)
def test_invalid_value_gets_a_sentence_beside_it_and_on_submit(
    settings, db, demo_datasets, field, value, sentence
):
    at = _open(db, "iris")
    at.number_input(key=f"nr_{field}").set_value(value).run()
    # Not clamped by the widget: the value stays as typed, and the sentence sits beside it.
    assert at.number_input(key=f"nr_{field}").value == value
    assert sentence in _errors_under_row_of(at, field)
    assert field not in texts(at.error)  # the form's label, not the internal field name
    assert "Fix the values marked in the form" in texts(at.markdown)

    button(at, "Start training").click().run()
    assert not at.exception
    refusal = texts(at.error)
    assert "The run was not started: 1 value(s) to fix first." in refusal
    assert sentence in refusal.split("fix first.", 1)[1]
    assert run_store.list_runs(db) == []

    # Fixed, it goes.
    at.number_input(key=f"nr_{field}").set_value(RUN_DEFAULTS[field]).run()
    assert not at.error
    button(at, "Start training").click().run()
    assert len(run_store.list_runs(db)) == 1


RUN_DEFAULTS = {
    "epochs": 5,
    "learning_rate": 0.001,
    "batch_size": 16,
    "val_fraction": 0.2,
    "dropout": 0.1,
}


def test_several_invalid_values_are_all_listed(settings, db, demo_datasets):
    at = _open(db, "iris")
    at.number_input(key="nr_epochs").set_value(0)
    at.number_input(key="nr_batch_size").set_value(0)
    at.text_input(key="nr_hidden_sizes").set_value("64,x")
    button(at, "Start training").click().run()
    refusal = texts(at.error)
    assert "3 value(s) to fix first" in refusal
    assert "Epochs must be a whole number between 1 and 10,000; 0 is too small." in refusal
    assert "Batch size must be a whole number" in refusal
    assert "Hidden sizes: write integers separated by commas" in refusal
    assert run_store.list_runs(db) == []


def test_config_problems_speak_the_labels_given_or_the_keys():
    values = {"epochs": 10_000_000, "val_fraction": 0.45, "test_fraction": 0.45}
    (problem,) = config_problems(values, {"epochs": "Epochs"})
    assert problem.fields == ("epochs",)
    assert problem.sentence.startswith("Epochs must be a whole number between 1 and 10,000")
    (split,) = config_problems(
        {"val_fraction": 0.45, "test_fraction": 0.45},
        {"val_fraction": "Validation share", "test_fraction": "Test share"},
    )
    assert split.fields == ("val_fraction", "test_fraction")
    assert split.sentence.startswith("Validation share + Test share must leave at least 20%")
    (heads,) = config_problems(
        {"model": "transformer", "embedding_dim": 100, "transformer_heads": 3}
    )
    assert heads.sentence == (
        "transformer_heads (3) must divide embedding_dim (100) evenly, e.g. embedding_dim 99."
    )
    (nan,) = config_problems({"learning_rate": float("nan")})
    assert nan.sentence.endswith("nan is not a finite number.")


# ---------------------------------------------------------------- the CLI


def test_cli_preset_sets_the_run_and_set_wins_over_it(settings, db, demo_datasets):
    iris = find_dataset(db, "iris")
    quick = seedlab_in_process("runs", "submit", "--dataset", "iris", "--preset", "quick")
    assert quick.returncode == 0, quick.stderr
    config = run_store.get_run(db, int(quick.stdout)).config
    expected = preset_for_dataset("quick", iris)
    assert {k: config[k] for k in expected} == expected

    mixed = seedlab_in_process(
        "runs", "submit", "--dataset", "iris", "--preset", "thorough", "--set", "epochs=4"
    )
    assert mixed.returncode == 0, mixed.stderr
    config = run_store.get_run(db, int(mixed.stdout)).config
    assert config["epochs"] == 4
    assert config["hidden_sizes"] == preset_for_dataset("thorough", iris)["hidden_sizes"]

    wrong = seedlab_in_process("runs", "submit", "--dataset", "iris", "--preset", "fast")
    assert wrong.returncode == 1
    assert wrong.stderr.startswith(
        "error: preset must be one of quick, balanced, thorough; got 'fast'."
    )
    assert len(run_store.list_runs(db)) == 2


@pytest.mark.parametrize(
    ("override", "sentence"),
    [
        (
            "epochs=10000000",
            "epochs must be a whole number between 1 and 10,000; 10,000,000 is too large.",
        ),
        (
            "learning_rate=1000",
            "learning_rate must be more than 0 and at most 10; 1,000 is too large.",
        ),
        (
            "val_fraction=0.6",
            "val_fraction must be more than 0 and less than 0.5; 0.6 is too large.",
        ),
    ],
)
def test_cli_config_errors_are_sentences(settings, db, demo_datasets, override, sentence):
    result = seedlab_in_process("runs", "submit", "--dataset", "iris", "--set", override)
    assert result.returncode == 1
    assert result.stderr == f"error: Invalid run config: {sentence}\n"
    assert run_store.list_runs(db) == []


def test_what_the_dataset_refuses_is_beside_its_field_before_the_click(settings, db, demo_datasets):
    """Regression on iris' categories, or a monitor the task does not measure: valid values for
    some dataset, refused for this one by submit. The form says so beside the field at once."""
    at = _open(db, "iris")
    at.selectbox(key="nr_task").set_value("regression").run()
    sentence = "task: regression needs a numeric target, but 'species' in 'iris' holds categories"
    assert sentence in _errors_under_row_of(at, "task")
    assert "Fix the values marked in the form" in texts(at.markdown)
    button(at, "Start training").click().run()
    assert "The run was not started: 1 value(s) to fix first." in texts(at.error)
    assert run_store.list_runs(db) == []

    at = _open(db, "diabetes")  # a regression dataset: accuracy is not measured there
    at.selectbox(key="nr_monitor").set_value("val_accuracy").run()
    assert "monitor: val_accuracy is not measured for regression" in _errors_under_row_of(
        at, "monitor"
    )
    button(at, "Start training").click().run()
    assert run_store.list_runs(db) == []
