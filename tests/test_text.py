"""Text classification for real: tokenizer, kind at ingest, models, a worker run, the pages."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from db import datasets as dataset_store
from db import runs as run_store
from engine.core.config import RunConfig, validate_config
from engine.core.errors import ConfigError, DatasetError
from engine.data.datasets import ingest_bytes
from engine.data.demo_text import support_tickets
from engine.data.stored import load_frame
from engine.data.text import resolve_kind
from engine.data.tokenizer import PAD_ID, UNK_ID, WordTokenizer, split_words
from engine.ml.device import choose_device
from engine.ml.inputs import InputSpec
from engine.ml.models.build import build_model
from engine.ml.pipeline import evaluate_on_test, prepare_dataset, save_checkpoint
from engine.ml.prep.tabular import split_frame
from engine.ml.prep.text import TextPreprocessor
from engine.ml.train import ListReporter, train
from engine.services.launch import find_dataset, submit_run
from tests.support.commands import seedlab_in_process
from tests.support.data import dataset_state
from tests.support.engine import start_worker, stop_worker
from tests.support.pages import button, open_page, plotly_figures, texts
from tests.support.waiting import wait_until

CPU = choose_device("cpu")
FAMILIES = ["textcnn", "embedding_bag", "lstm", "gru", "transformer"]
# Tiny sizes so every family trains in well under a second here.
TINY = {
    "embedding_dim": 16,
    "rnn_hidden_size": 8,
    "transformer_heads": 2,
    "transformer_ff_dim": 16,
    "textcnn_filters": 8,
    "max_length": 12,
}

REVIEWS_CSV = "review,stars\n" + "\n".join(
    f'"great product, works well and arrived fast, order {i}",good\n'
    f'"broken on arrival and the seller never answered, order {i}",bad'
    for i in range(30)
)


# ---------------------------------------------------------------- tokenizer


def test_vocabulary_comes_from_the_training_texts_only():
    tok = WordTokenizer.fit(
        ["the parcel is late", "the parcel is lost"], vocab_size=100, max_length=6
    )
    assert tok.vocab[:2] == ["<pad>", "<unk>"] and PAD_ID == 0 and UNK_ID == 1
    assert tok.vocab[2:5] == ["is", "parcel", "the"]  # most frequent first, ties by word
    ids = tok.encode(["The parcel is MISSING"])[0]
    assert ids.dtype == np.int64 and ids.shape == (6,)
    assert ids.tolist() == [tok.vocab.index("the"), tok.vocab.index("parcel"), 2, UNK_ID, 0, 0]


def test_cap_min_frequency_and_truncation():
    texts = ["a a a b b c", "a b d"]
    capped = WordTokenizer.fit(texts, vocab_size=4, max_length=3)
    assert capped.vocab == ["<pad>", "<unk>", "a", "b"]
    frequent = WordTokenizer.fit(texts, vocab_size=100, min_frequency=2, max_length=3)
    assert set(frequent.vocab[2:]) == {"a", "b"}
    assert capped.encode(["c b a a a a"]).tolist() == [[UNK_ID, 3, 2]]  # the first 3 tokens


def test_punctuation_and_non_ascii_words():
    assert split_words("Refund!! Don't charge me $20.50, OK?") == [
        "refund",
        "!",
        "!",
        "don't",
        "charge",
        "me",
        "$",
        "20.50",
        ",",
        "ok",
        "?",
    ]
    assert split_words("Café naïve STRASSE größe 東京 e-mail") == [
        "café",
        "naïve",
        "strasse",
        "grösse",  # casefold: ß → ss is how Python folds it; "größe" casefolds to "grösse"
        "東京",
        "e-mail",
    ]
    assert split_words("Café", lowercase=False) == ["Café"]
    tok = WordTokenizer.fit(["café crème"], vocab_size=10, max_length=4)
    assert UNK_ID not in tok.encode(["CAFÉ crème"])[0][:2]


def test_tokenizer_round_trips_through_json():
    tok = WordTokenizer.fit(["ship it to me", "bill me"], vocab_size=50, max_length=5)
    pre = TextPreprocessor("ticket", tok)
    again = TextPreprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    assert again.text_column == "ticket"
    assert (again.transform(["Ship the bill", None]) == pre.transform(["Ship the bill", ""])).all()


# ---------------------------------------------------------------- kind at ingest


def test_a_table_of_texts_is_inferred_as_text(settings, db):
    record = ingest_bytes(
        settings, db, REVIEWS_CSV.encode(), filename="reviews.csv", name="reviews", target="stars"
    )
    assert record.kind == "text" and record.task == "classification"
    assert record.schema["text_column"] == "review" and record.schema["features"] == ["review"]
    assert record.schema["text_tokens"]["max"] >= 8
    roles = {c["name"]: c["role"] for c in record.schema["columns"]}
    assert roles == {"review": "text", "stars": "target"}


def test_a_comment_among_many_features_stays_tabular_unless_forced():
    frame = pd.DataFrame(
        {
            "age": range(40),
            "plan": ["basic", "pro"] * 20,
            "fee": [i * 1.5 for i in range(40)],
            "note": [f"customer {i} wrote a long note about the service" for i in range(40)],
            "churn": ["yes", "no"] * 20,
        }
    )
    assert resolve_kind(frame, "churn", "auto", None, "t.csv") == ("tabular", None)
    assert resolve_kind(frame, "churn", "text", None, "t.csv") == ("text", "note")
    assert resolve_kind(frame, "churn", "auto", "note", "t.csv") == ("text", "note")


def test_forcing_text_on_short_strings_picks_the_longest_string_column(settings, db):
    csv = "code,word,label\n" + "\n".join(f"{i},{['hi', 'bye'][i % 2]}x,{i % 2}" for i in range(30))
    record = ingest_bytes(
        settings, db, csv.encode(), filename="w.csv", name="w", target="label", kind="text"
    )
    assert record.kind == "text" and record.schema["text_column"] == "word"


@pytest.mark.parametrize(
    ("csv", "options", "message"),
    [
        ("a,b,label\n" + "\n".join(f"{i},{i * 2},{i % 2}" for i in range(20)), {"kind": "text"},
         "no text column besides the target"),
        ("t,label\n" + "\n".join(f",{i % 2}" for i in range(20)), {"text_column": "t"},
         "empty in every row"),
        ("t,label\n" + "\n".join(f"some words here {i},same" for i in range(20)), {},
         "only one class"),
        ("t,label\n" + "\n".join(f"some words here {i},{i % 2}" for i in range(20)),
         {"text_column": "body"}, "Text column 'body' is not in"),
        ("t,n,label\n" + "\n".join(f"some words {i},{i},{i % 2}" for i in range(20)),
         {"text_column": "n"}, "holds numbers, not text"),
        ("t,label\n" + "\n".join(f"some words here {i},{i % 2}" for i in range(20)),
         {"text_column": "t", "kind": "tabular"}, "text datasets only"),
        ("t,label\n" + "\n".join(f"some words here {i},{i % 2}" for i in range(20)),
         {"kind": "pictures"}, "kind must be one of"),
    ],
)  # fmt: skip
def test_bad_text_uploads_say_what_to_do_and_leave_nothing(settings, db, csv, options, message):
    with pytest.raises(DatasetError, match=message):
        ingest_bytes(settings, db, csv.encode(), filename="x.csv", name="x", target="label",
                     **options)  # fmt: skip
    assert dataset_state(settings, db) == ([], [])


def test_cli_adds_a_forced_text_dataset(settings, tmp_path):

    path = tmp_path / "notes.csv"
    path.write_text("id,note,label\n" + "\n".join(f"{i},ok {i % 3},{i % 2}" for i in range(30)))
    args = ["datasets", "add", str(path), "--kind", "text", "--text-column", "note"]
    result = seedlab_in_process(*args, "--target", "label")
    assert result.returncode == 0, result.stderr
    assert "text in column 'note'" in result.stdout
    bad = seedlab_in_process(
        "datasets", "add", str(path), "--name", "n2", "--kind", "text",
        "--text-column", "label", "--target", "label",
    )  # fmt: skip
    assert bad.returncode != 0 and bad.stderr.startswith("error: Column 'label' cannot be both")


# ---------------------------------------------------------------- models


@pytest.mark.parametrize("family", FAMILIES)
def test_each_text_family_learns_and_ignores_padding(family):
    torch.manual_seed(0)
    config = RunConfig(model=family, **TINY)
    spec = InputSpec(kind="text", shape=(12,), vocab_size=30, pad_index=PAD_ID)
    model = build_model(config, spec, n_outputs=3)
    # Label = which of three marker words the text holds; noise words around it.
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros((96, 12), dtype=torch.int64)
    y = torch.arange(96) % 3
    for i in range(96):
        n = int(torch.randint(2, 10, (1,), generator=gen))
        x[i, :n] = torch.randint(5, 30, (n,), generator=gen)
        x[i, int(torch.randint(0, n, (1,), generator=gen))] = 2 + y[i]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    model.eval()
    with torch.no_grad():
        short = model(x[:8])  # texts of at most 9 tokens: the batch is trimmed to 9 columns
        # In a batch with one full-length text the same texts carry more padding: it must not
        # change their outputs.
        mixed = model(torch.cat([x[:8], torch.full((1, 12), 7)]))[:8]
        empty = model(torch.zeros((2, 12), dtype=torch.int64))
    assert torch.allclose(short, mixed, atol=1e-4)
    assert torch.isfinite(empty).all()


def test_transformer_heads_must_divide_the_width():
    with pytest.raises(ConfigError, match=r"transformer_heads \(3\) must divide embedding_dim"):
        validate_config({"model": "transformer", "embedding_dim": 64, "transformer_heads": 3})
    assert validate_config({"textcnn_kernel_sizes": "2, 3"}).textcnn_kernel_sizes == [2, 3]
    with pytest.raises(ConfigError, match="lstm"):
        build_model(RunConfig(model="lstm"), InputSpec(kind="tabular", shape=(4,)), 2)


def test_demo_tickets_are_deterministic_and_need_more_than_one_word():
    frame = support_tickets()
    assert frame.equals(support_tickets()) and len(frame) == 600
    assert set(frame["intent"]) == {"billing", "shipping", "account", "technical", "refund"}
    # No single word gives an intent away: a word that marks one intent (>= 90% of its tickets
    # are that intent) appears in at most 70% of that intent's tickets.
    per_intent = frame["intent"].value_counts()
    rows = [
        (word, intent)
        for text, intent in zip(frame["ticket"], frame["intent"], strict=True)
        for word in set(split_words(text))
    ]
    pairs = pd.DataFrame(rows, columns=["word", "intent"]).value_counts()
    words = pairs.groupby(level="word").sum()
    coverage = [
        n / per_intent[intent] for (word, intent), n in pairs.items() if n / words[word] >= 0.9
    ]
    assert 0.3 < max(coverage) < 0.7


def test_default_text_model_reaches_90_percent_on_the_demo(settings, db, demo_datasets):
    record = find_dataset(db, "support_tickets")
    assert record.kind == "text" and record.schema["text_column"] == "ticket"
    config = RunConfig(epochs=5)  # model=auto → textcnn, every other setting its default
    data = prepare_dataset(settings, record, config, CPU)
    assert data.train_data.x_train.dtype == torch.int64
    assert data.train_data.x_train.shape[1] == config.max_length
    # The vocabulary comes from the training rows only.
    splits = split_frame(
        load_frame(settings, record), target="intent", task="classification",
        val_fraction=config.val_fraction, test_fraction=config.test_fraction, seed=config.seed,
    )  # fmt: skip
    train_words = {w for t in splits.train["ticket"] for w in split_words(t)}
    other_words = {w for t in splits.test["ticket"] for w in split_words(t)} - train_words
    vocab = set(data.preprocessor.tokenizer.vocab[2:])
    assert other_words and vocab <= train_words and not vocab & other_words
    result = train(config, data.train_data, ListReporter(), CPU)
    report = evaluate_on_test(result.model, data, CPU)
    assert report["metrics"]["test_accuracy"] >= 0.9, report["metrics"]
    assert report["input"]["kind"] == "text" and report["input"]["vocab_size"] > 100
    shown = data.describe_test([0, 1])
    assert all(isinstance(d["text"], str) and d["text"] for d in shown)


# ---------------------------------------------------------------- through the engine


@pytest.mark.slow  # a real worker subprocess trains it
def test_lstm_run_on_the_demo_through_a_real_worker(settings, db, demo_datasets, tmp_path):
    run_id = submit_run(
        db, "support_tickets", {"model": "lstm", "epochs": 2, "batch_size": 128, **TINY}
    )
    worker = start_worker()
    try:
        wait_until(
            lambda: run_store.get_run(db, run_id).status in {"completed", "failed"},
            timeout=120,
            what="the text run to finish",
        )
    finally:
        log = stop_worker(worker)
    run = run_store.get_run(db, run_id)
    assert run.status == "completed", (run.error, log)
    run_dir = settings.run_dir(run_id)
    report = json.loads((run_dir / "report.json").read_text())
    assert report["classes"] == ["account", "billing", "refund", "shipping", "technical"]
    assert 0.0 <= report["metrics"]["test_accuracy"] <= 1.0
    assert np.array(report["confusion_matrix"]).sum() == report["split_sizes"]["test"]
    assert report["input"]["kind"] == "text" and report["input"]["shape"] == [12]
    payload = torch.load(run_dir / "model.pt", weights_only=True)
    assert payload["model_family"] == "lstm"
    # The checkpoint holds what encodes a new ticket: rebuild both and classify one.
    pre = TextPreprocessor.from_dict(payload["preprocessor"])
    model = build_model(RunConfig(**payload["config"]), InputSpec.from_dict(payload["input"]), 5)
    model.load_state_dict(payload["model_state"])
    logits = model.eval()(torch.from_numpy(pre.transform(["Where is my parcel?"])))
    assert logits.shape == (1, 5)

    # The Run page shows the text run's report (the confusion matrix over the five intents).
    at = open_page("views/run_detail.py", run=str(run_id), tab="Evaluation")
    heatmap = next(f["data"][0] for f in plotly_figures(at) if f["data"][0]["type"] == "heatmap")
    assert np.array(heatmap["z"]).sum() == report["split_sizes"]["test"] and not at.error


def test_checkpoint_of_a_text_run_loads_with_weights_only(settings, db, demo_datasets, tmp_path):
    record = find_dataset(db, "support_tickets")
    config = RunConfig(model="transformer", epochs=1, **TINY)
    data = prepare_dataset(settings, record, config, CPU)
    result = train(config, data.train_data, ListReporter(), CPU)
    save_checkpoint(tmp_path / "m.pt", result.model, config, data, epoch=1, schema=record.schema)
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    assert payload["preprocessor"]["text_column"] == "ticket"
    assert payload["preprocessor"]["tokenizer"]["vocab"][:2] == ["<pad>", "<unk>"]


# ---------------------------------------------------------------- pages


def test_datasets_page_shows_texts_per_label_and_lengths(settings, db, demo_datasets) -> None:
    record = find_dataset(db, "support_tickets")
    at = open_page("views/datasets.py", dataset=str(record.id))
    assert "Sample texts per label" in texts(at.markdown)
    samples = next(d.value for d in at.dataframe if list(d.value.columns) == ["label", "text"])
    assert samples["label"].value_counts().to_dict() == {c: 3 for c in record.schema["classes"]}
    figures = plotly_figures(at)
    assert sum(figures[0]["data"][0]["y"]) == record.n_rows  # class balance
    lengths = figures[1]
    assert lengths["layout"]["xaxis"]["title"]["text"] == "tokens per text"
    assert sum(lengths["data"][0]["y"]) == record.n_rows


def test_upload_with_kind_text_stores_a_text_dataset(settings, db) -> None:
    csv = "note,label\n" + "\n".join(f"ok{i % 3},{i % 2}" for i in range(30))  # one-word notes
    at = open_page("views/datasets.py")
    at.file_uploader[0].set_value(("notes.csv", csv.encode(), "text/csv")).run()
    at.selectbox(key=next(k for k in _keys(at) if k.startswith("upload_kind_"))).set_value(
        "text"
    ).run()
    text_box = at.selectbox(key=next(k for k in _keys(at) if k.startswith("upload_text_column_")))
    assert text_box.options == ["auto", "note"]
    button(at, "Add dataset").click().run()
    assert not at.exception and not at.error, texts(at.error)
    stored = dataset_store.get_dataset_by_name(db, "notes")
    assert stored.kind == "text" and stored.schema["text_column"] == "note"
    assert "texts in column 'note'" in texts(at.success)


def _keys(at) -> list[str]:  # noqa: ANN001
    return [str(s.key) for s in at.selectbox if s.key]


def test_new_run_form_shows_text_fields_for_text_datasets_only(settings, db, demo_datasets):
    tickets, iris = find_dataset(db, "support_tickets"), find_dataset(db, "iris")
    at = open_page("views/new_run.py", dataset=str(tickets.id))
    assert "Text" in texts(at.subheader)
    assert at.number_input(key="nr_max_length").value == RunConfig().max_length
    assert at.selectbox(key="nr_model").options == ["auto → textcnn", *FAMILIES, "pretrained"]
    at.selectbox(key="nr_model").set_value("transformer")
    at.number_input(key="nr_max_length").set_value(24)
    button(at, "Start training").click().run()
    assert not at.exception and not at.error, texts(at.error)
    queued = run_store.list_runs(db)[0]
    assert queued.config["model"] == "transformer" and queued.config["max_length"] == 24

    at = open_page("views/new_run.py", dataset=str(iris.id))
    assert "Text" not in texts(at.subheader)
    assert "nr_max_length" not in [str(n.key) for n in at.number_input]
