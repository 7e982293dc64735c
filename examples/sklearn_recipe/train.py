"""A scikit-learn script as a Seedlab recipe. It has no seedlab.yaml: Seedlab reads its
parameters from the argparse options below (without running it), so the form on New run and
`--set` know --n_estimators, --max_depth and --learning_rate.

    seedlab recipes add examples/sklearn_recipe --name gbm
    seedlab runs submit --recipe gbm --set n_estimators=200 --dataset iris
    seedlab sweeps submit --recipe gbm --param learning_rate=0.01..0.5:log --objective val_accuracy

Each boosting stage's validation accuracy is logged as a step, so a sweep's pruner can stop a
poor trial early. Without a Seedlab dataset it trains on scikit-learn's bundled iris.
"""

from __future__ import annotations

import argparse
import os

import pandas as pd
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

import seedlab

parser = argparse.ArgumentParser(description="Gradient boosting on a table")
parser.add_argument("--n_estimators", type=int, default=100, help="boosting stages")
parser.add_argument("--max_depth", type=int, default=3, choices=[1, 2, 3, 4, 5, 6])
parser.add_argument("--learning_rate", type=float, default=0.1, help="shrinkage")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

path = os.environ.get("SEEDLAB_DATASET_PATH")
if path and path.endswith(".parquet"):
    frame = pd.read_parquet(path)
    y = frame.pop(os.environ.get("SEEDLAB_DATASET_TARGET") or frame.columns[-1]).astype(str)
    X = pd.get_dummies(frame).fillna(0)
else:
    X, y = load_iris(return_X_y=True, as_frame=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=args.seed)

with seedlab.init(project="Examples", name="gbm", config=vars(args)) as run:
    model = GradientBoostingClassifier(
        n_estimators=args.n_estimators,
        max_depth=args.max_depth,
        learning_rate=args.learning_rate,
        random_state=args.seed,
    ).fit(X_train, y_train)
    for stage, predicted in enumerate(model.staged_predict(X_test)):
        if stage % 10 == 0 or stage == args.n_estimators - 1:
            run.log({"val_accuracy": accuracy_score(y_test, predicted)}, step=stage)
        if run.should_stop():
            break
    run.summary({"test_accuracy": accuracy_score(y_test, model.predict(X_test))})
