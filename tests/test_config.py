"""RunConfig validation: defaults, messages that name the field and the allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.config import RunConfig, load_config_file, parse_overrides, validate_config
from engine.core.errors import ConfigError


def test_defaults_are_valid():
    config = validate_config({})
    assert config == RunConfig()
    assert config.optimizer in ("adamw", "adam", "sgd")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"optimizer": "rmsprop"},
            "optimizer must be one of 'adamw', 'adam' or 'sgd'; got 'rmsprop'",
        ),
        ({"learning_rate": 0}, "learning_rate must be more than 0 and at most 10; 0 is too small."),
        ({"lr": 0.1}, "Did you mean 'learning_rate'?"),
        ({"hidden_sizes": "abc"}, "hidden_sizes: write integers separated by commas"),
        ({"hidden_sizes": [0]}, "hidden_sizes: each hidden size must be between 1 and 8192"),
        ({"epochs": "many"}, "epochs must be a whole number between 1 and 10,000; 'many' is not"),
        ({"device": "tpu"}, "device must be one of 'auto', 'cpu' or 'cuda'"),
        ({"val_fraction": 0.45, "test_fraction": 0.4}, "at least 20% of rows for training"),
    ],
)
def test_invalid_values_name_the_field(values, expected):
    with pytest.raises(ConfigError) as info:
        validate_config(values)
    assert expected in str(info.value)


def test_hidden_sizes_accept_comma_text():
    assert validate_config({"hidden_sizes": "64, 32"}).hidden_sizes == [64, 32]
    assert validate_config({"hidden_sizes": ""}).hidden_sizes == []


def test_overrides_parse_types():
    assert parse_overrides(
        ["learning_rate=0.01", "epochs=3", "hidden_sizes=[8, 4]", "restore_best_weights=false"]
    ) == {
        "learning_rate": 0.01,
        "epochs": 3,
        "hidden_sizes": [8, 4],
        "restore_best_weights": False,
    }
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["epochs"])


def test_config_files(tmp_path: Path):
    (tmp_path / "c.yaml").write_text("epochs: 3\noptimizer: sgd\n")
    (tmp_path / "c.json").write_text('{"epochs": 4}')
    (tmp_path / "bad.yaml").write_text("- a\n- b\n")
    assert load_config_file(tmp_path / "c.yaml") == {"epochs": 3, "optimizer": "sgd"}
    assert load_config_file(tmp_path / "c.json") == {"epochs": 4}
    with pytest.raises(ConfigError, match="mapping"):
        load_config_file(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="Cannot read"):
        load_config_file(tmp_path / "missing.yaml")
