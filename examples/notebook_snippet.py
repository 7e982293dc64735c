# %% [markdown]
# # Logging from a notebook
# Any Python — a notebook, a script, a job elsewhere — logs a run into Seedlab with the SDK.
# Point it at a Seedlab: `SEEDLAB_HOME` (this machine's Seedlab; `SEEDLAB_SERVER` names the
# server's `seedlab` command if it is not on PATH), or `SEEDLAB_URL` + `SEEDLAB_TOKEN` (a running
# Seedlab over HTTP; a token from `seedlab users token NAME`). The run shows live on the Runs
# and Run pages, like any other.

# %%
import math
import random

import seedlab

# %%
with seedlab.init(project="Notebooks", name="quick-try", config={"lr": 3e-4, "depth": 18}) as run:
    for step in range(200):
        loss = math.exp(-step / 50) + random.random() * 0.05
        run.log({"train_loss": loss, "val_accuracy": 1 - loss / 2}, step=step)
        if run.should_stop():  # the Cancel button / `seedlab runs cancel`
            break
    run.summary({"test_accuracy": 1 - loss / 2})
print("logged run", run.id)
