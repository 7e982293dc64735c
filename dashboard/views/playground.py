"""Playground: try a trained model on your own input and see why it answered so.

For people who do not read loss curves: pick a completed run (?run=ID links to one), fill the
inputs generated from what it was trained on, read the prediction, the class probabilities and
an explanation. A/B puts two models side by side on the same input (?run=A&b=B); the Batch tab
predicts a whole CSV.
"""

import streamlit as st

from dashboard import auth, data
from dashboard.components.playground_batch import batch_section
from dashboard.components.playground_inputs import image_input, table_inputs, text_input
from dashboard.components.playground_model import (
    LoadedModel,
    PickedModel,
    example_text,
    load_model,
    pick_model,
)
from dashboard.components.playground_output import show_metrics, show_prediction
from dashboard.components.share_button import share_button
from engine.ml.predictor import PredictorError
from engine.services.permissions import Permission

auth.guard_page(Permission.PREDICT)
st.title("Playground")
st.caption(
    "Try a trained model on your own input: the prediction, how sure it is, and which parts of "
    "the input drove it."
)
db = data.get_db()

ab = st.toggle(
    "A/B: two models side by side",
    value="b" in st.query_params,
    key="pg_ab",
    help="Both models answer the same input, each with its test metrics.",
)
if ab:
    col_a, col_b = st.columns(2)
    with col_a:
        picked_a = pick_model(db, key="pg_model_a", label="Model A")
    with col_b:
        # Only a model for the same kind of input is pre-selected (or none, with a sentence).
        picked_b = pick_model(
            db, key="pg_model_b", query_key="b", label="Model B", compatible_with=picked_a
        )
    picks = [("A", picked_a), ("B", picked_b)]
else:
    st.query_params.pop("b", None)
    picks = [("", pick_model(db, key="pg_model"))]

if picks[0][1] is not None and any(picked is None for _, picked in picks):
    st.stop()  # Model B: its picker has said why there is none
if any(picked is None for _, picked in picks):
    st.info(
        "No completed runs in this project yet. Train one — the demo run on the Home page takes "
        "about a minute — then come back to try it.",
        icon=":material/science:",
    )
    st.page_link(data.HOME_PAGE, label="Go to Home", icon=":material/home:")
    st.page_link(data.NEW_RUN_PAGE, label="New run", icon=":material/add_circle:")
    st.stop()

models: list[tuple[str, PickedModel, LoadedModel]] = []
for tag, picked in picks:
    try:
        models.append((tag, picked, load_model(picked)))
    except PredictorError as exc:
        who = f"Model {tag}: run" if tag else "Run"
        st.error(
            f"{who} #{picked.run_id} cannot be used here. {data.md_text(str(exc))}",
            icon=":material/error:",
        )
if len(models) < len(picks):
    st.stop()

if len(models) == 1:
    # A registered model is shared by its name (the visitor gets its production version, else
    # its newest, at each visit); a run picked here, by its run: its model stays that one.
    shared_name = st.query_params.get("model")
    share_button("model", shared_name or models[0][1].run_id, key="share_model")
kinds = {tag: loaded.predictor.kind for tag, _, loaded in models}
if len(set(kinds.values())) > 1:
    st.error(
        f"A/B runs both models on the same input, but model A takes {kinds['A']} input and "
        f"model B takes {kinds['B']}. Pick two runs trained on the same kind of data."
    )
    st.stop()
kind = kinds[models[0][0]]

try_tab, batch_tab = st.tabs(["Try it", "Batch prediction"])
with try_tab:
    if kind == "tabular":
        inputs = table_inputs([loaded.predictor.preprocessor for _, _, loaded in models], "pg_in")
    elif kind == "text":
        first_picked, first = models[0][1], models[0][2].predictor
        column = getattr(first.preprocessor, "text_column", "")
        inputs = text_input("pg_text", example_text(first_picked, column))
    else:
        inputs = image_input("pg_image")
    st.divider()
    for column, (tag, picked, loaded) in zip(st.columns(len(models)), models, strict=True):
        with column:
            if tag:
                st.subheader(f"Model {tag}")
                st.caption(data.md_text(picked.title))
            if inputs is not None:
                with data.shown_errors("predicting"):
                    show_prediction(loaded, inputs, key=f"pg_out{tag}")
            with st.expander("Test metrics", expanded=bool(tag)):
                show_metrics(picked.run_id)
with batch_tab:
    batch_section([(tag or "A", loaded) for tag, _, loaded in models], key="pg_batch")
