"""model=auto chooses by validation score within a fixed budget, records why, and never looks at
the test split; per-family defaults fill only what the user left alone."""

from __future__ import annotations

import pytest

from db import artifacts as artifact_store
from db import runs as run_store
from engine.core.config import RunConfig
from engine.core.family_defaults import FAMILY_DEFAULTS
from engine.core.presets import preset_config
from engine.core.run_files import read_auto_choice
from engine.execution.runner import _choose_model
from engine.ml.auto_select import AUTO_CANDIDATES, choose_model, objective_for
from engine.ml.device import choose_device
from engine.ml.pipeline import prepare_dataset
from engine.services.launch import find_dataset, submit_run
from tests.support.data import completed_run
from tests.support.pages import open_page, texts

CPU = choose_device("cpu")


def _without_seconds(choice: dict) -> dict:
    return {
        **choice,
        "candidates": [{**c, "seconds": None} for c in choice["candidates"]],
    }


def test_an_auto_run_races_the_candidates_and_trains_the_winner(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "wine", epochs=4)
    choice = read_auto_choice(settings, run_id)
    assert choice is not None
    assert [c["label"] for c in choice["candidates"]] == [
        c.label for c in AUTO_CANDIDATES["tabular"]
    ]
    assert sum(c["chosen"] for c in choice["candidates"]) == 1
    for candidate in choice["candidates"]:
        # The same steps for each: the run's own (4 epochs) when shorter than the budget.
        assert candidate["steps"] == choice["steps_per_candidate"] > 0
        assert 0 <= candidate["score"] <= 1 and candidate["seconds"] >= 0
    assert choice["objective"] == "val_accuracy" and choice["reason"]
    chosen = next(c for c in choice["candidates"] if c["chosen"])
    best = max(c["score"] for c in choice["candidates"])
    assert chosen["score"] == best
    # The run's config is now what trained: the chosen candidate, visible and clonable.
    config = run_store.get_run(db, run_id).config
    assert config["model"] == "mlp"
    assert all(config[k] == v for k, v in chosen["values"].items())
    kinds = {a.kind for a in artifact_store.list_artifacts(db, run_id)}
    assert {"auto_choice", "checkpoint", "report"} <= kinds
    # The Run page shows the table in the Evaluation tab.
    at = open_page("views/run_detail.py", run=str(run_id), tab="Evaluation")  # the table is there
    assert "Model chosen by auto" in texts(at.markdown)
    table = next(d.value for d in at.dataframe if "candidate" in d.value.columns)
    assert list(table["candidate"]) == [c["label"] for c in choice["candidates"]]
    assert list(table["chosen"]).count("✓") == 1


def test_the_same_seed_makes_the_same_choice_and_table(settings, db, demo_datasets):
    record = find_dataset(db, "support_tickets")
    config = RunConfig(epochs=3, batch_size=64, seed=3, max_length=16)
    prepared = []

    def prepare(candidate: RunConfig):  # noqa: ANN202 - TrainData
        prepared.append(prepare_dataset(settings, record, candidate, CPU))
        return prepared[-1].train_data

    data = prepare_dataset(settings, record, config, CPU)
    first_config, first = choose_model(config, data.train_data, CPU, steps=40, prepare=prepare)
    again = prepare_dataset(settings, record, config, CPU)
    second_config, second = choose_model(config, again.train_data, CPU, steps=40, prepare=prepare)
    assert first_config == second_config
    assert _without_seconds(first.to_dict()) == _without_seconds(second.to_dict())
    # The bundled MiniLM encoder races too (requirements-nodeps.txt installs it), on its own
    # tokens of the same rows: the same split, so the same validation texts are scored.
    assert [c.model for c in first.trials] == ["textcnn", "embedding_bag", "pretrained"]
    assert len(prepared) == 2 and prepared[0].test_row_ids == data.test_row_ids
    assert type(prepared[0].preprocessor) is not type(data.preprocessor)  # its own tokenizer
    assert len(prepared[0].train_data.y_val) == len(data.train_data.y_val)
    assert (prepared[0].train_data.y_val == data.train_data.y_val).all()
    without = choose_model(config, data.train_data, CPU, steps=40)[1]  # no way to prepare it
    assert [t.model for t in without.trials] == ["textcnn", "embedding_bag"]
    # Each text candidate got its family's learning rate, recorded in its row.
    bag = next(t for t in first.trials if t.model == "embedding_bag")
    assert bag.values["learning_rate"] == FAMILY_DEFAULTS["embedding_bag"]["learning_rate"]
    assert first_config.model in ("textcnn", "embedding_bag")
    if first_config.model == "embedding_bag":
        assert first_config.learning_rate == 1e-2


class _Untouchable:
    """Stands in for the test split: any use of it fails the test."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the choice looked at the test split ({name})")

    def __len__(self) -> int:
        raise AssertionError("the choice looked at the test split (len)")

    def __getitem__(self, key: object) -> object:
        raise AssertionError("the choice looked at the test split (an item)")


def test_the_choice_never_reads_the_test_split(settings, db, demo_datasets):
    record = find_dataset(db, "iris")
    config = RunConfig(epochs=2)
    data = prepare_dataset(settings, record, config, CPU)
    data.x_test, data.y_test = _Untouchable(), _Untouchable()
    data.describe_test = _Untouchable()
    chosen, choice = _choose_model(settings, 1, config, data, CPU, None)
    assert chosen.model == "mlp" and len(choice.trials) == len(AUTO_CANDIDATES["tabular"])


def test_the_objective_is_the_users_metric_accuracy_unless_told():
    assert objective_for(RunConfig(), "classification") == ("val_accuracy", True)
    assert objective_for(RunConfig(), "regression") == ("val_rmse", False)
    chosen = RunConfig(monitor="val_f1_macro")
    assert objective_for(chosen, "classification") == ("val_f1_macro", True)


def test_family_defaults_fill_only_what_the_user_left_alone(settings, db, demo_datasets):
    bag = submit_run(db, "support_tickets", {"model": "embedding_bag", "epochs": 2})
    assert run_store.get_run(db, bag).config["learning_rate"] == 1e-2
    mine = submit_run(
        db, "support_tickets", {"model": "embedding_bag", "learning_rate": 3e-3, "epochs": 2}
    )
    assert run_store.get_run(db, mine).config["learning_rate"] == 3e-3
    rnn = run_store.get_run(db, submit_run(db, "support_tickets", {"model": "gru"})).config
    assert rnn["grad_clip_norm"] == 1.0 and rnn["learning_rate"] == 2e-3
    # auto keeps RunConfig's values at submit: each candidate gets its family's when it trains.
    auto = run_store.get_run(db, submit_run(db, "support_tickets", {"epochs": 2})).config
    assert auto["model"] == "auto" and auto["learning_rate"] == 1e-3
    # The form and `--preset` start from the family's values too.
    assert preset_config("balanced", "text", 600, "embedding_bag")["learning_rate"] == 1e-2
    assert "learning_rate" not in preset_config("balanced", "text", 600, "auto")


@pytest.mark.parametrize("dataset", ["iris"])
def test_a_named_model_races_nothing(settings, db, demo_datasets, dataset):
    run_id = completed_run(settings, db, dataset, model="mlp")
    assert read_auto_choice(settings, run_id) is None
    assert run_store.get_run(db, run_id).config["model"] == "mlp"


def test_a_candidate_that_cannot_train_drops_out_with_its_reason(
    settings, db, demo_datasets, monkeypatch
):
    from engine.ml.auto_select import Candidate

    broken = Candidate("Too wide", {"model": "mlp", "hidden_sizes": [99_999]})
    monkeypatch.setitem(AUTO_CANDIDATES, "tabular", [broken, *AUTO_CANDIDATES["tabular"][:1]])
    record = find_dataset(db, "iris")
    config = RunConfig(epochs=2)
    data = prepare_dataset(settings, record, config, CPU)
    chosen, choice = choose_model(config, data.train_data, CPU)
    first, second = choice.trials
    assert first.error and "8192" in first.error and first.score is None and not first.chosen
    assert second.chosen and chosen.hidden_sizes == [128, 64]


def test_a_shape_the_user_set_is_kept_and_not_raced(settings, db, demo_datasets):
    record = find_dataset(db, "iris")
    config = RunConfig(epochs=2, hidden_sizes=[16, 8])
    data = prepare_dataset(settings, record, config, CPU)
    chosen, choice = choose_model(config, data.train_data, CPU)
    assert chosen.model == "mlp" and chosen.hidden_sizes == [16, 8]
    assert len(choice.trials) == 1 and choice.trials[0].steps == 0  # nothing trained
    assert "hidden_sizes" in choice.reason and "did not race" in choice.reason
    # No dropout wanted: only the linear model (no layer to drop) fits, and trains unraced.
    no_dropout = RunConfig(epochs=2, dropout=0.0)
    chosen, choice = choose_model(no_dropout, data.train_data, CPU)
    assert chosen.hidden_sizes == [] and chosen.dropout == 0.0
    assert [t.label for t in choice.trials] == ["Linear"] and "without a race" in choice.reason
    # A family's own shape fields untouched (images, text): the families still race.
    text = RunConfig(epochs=1, embedding_dim=16)
    texts = prepare_dataset(settings, find_dataset(db, "support_tickets"), text, CPU)
    _, raced = choose_model(text, texts.train_data, CPU, steps=10)
    assert len(raced.trials) == 2
    assert all("embedding_dim" not in t.values for t in raced.trials)  # the user's 16 stays
