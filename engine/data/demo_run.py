"""The run behind Home's "Train a model on a demo dataset" (engine/services/runs.py
queue_demo_run), apart from engine/data/demo.py: that module imports scikit-learn's datasets
and Pillow to build the demo data (seconds on a busy machine), which the click must not wait
for once the datasets are there.

Handwritten digits, where a small CNN goes from guessing (10 %) to about 97 % validation
accuracy. Its training loss falls visibly within the first epoch, and 8 epochs take a few
seconds on two CPU cores: long enough to watch the curves move, done well within a minute.
"""

DEMO_RUN_DATASET = "digits"
# The model is named, not `auto`: the one click must not spend time racing candidates.
DEMO_RUN_CONFIG: dict[str, object] = {"model": "cnn", "epochs": 8, "batch_size": 32}
