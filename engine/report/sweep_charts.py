"""A sweep's charts: Optuna's figures without their own titles, since the Sweeps page heads
each chart itself (both showed: "Optimisation history" over "Optimization History Plot"), and
parameter importances only when enough completed trials back them."""

from __future__ import annotations

from typing import Any

# Importances are a random forest (fANOVA) fitted on the completed trials: from a handful of
# trials they mostly reflect which settings happened to be drawn, so none are drawn below this.
MIN_IMPORTANCE_TRIALS = 5
# Below this many, they are drawn with a caveat that they may still change a lot.
STEADY_IMPORTANCE_TRIALS = 20


def untitled(figure: Any) -> Any:  # noqa: ANN401 - a plotly Figure
    figure.update_layout(title_text=None)
    return figure


def history(study: Any) -> Any:  # noqa: ANN401 - an optuna Study → a plotly Figure
    import optuna.visualization as ov

    return untitled(ov.plot_optimization_history(study))


def importances(study: Any) -> Any:  # noqa: ANN401
    import optuna.visualization as ov

    return untitled(ov.plot_param_importances(study))


def parallel(study: Any) -> Any:  # noqa: ANN401
    import optuna.visualization as ov

    return untitled(ov.plot_parallel_coordinate(study))


def slices(study: Any) -> Any:  # noqa: ANN401
    import optuna.visualization as ov

    return untitled(ov.plot_slice(study))


def importance_note(completed: int, distinct: int) -> tuple[bool, str]:
    """(whether to draw importances, the sentence under or instead of them) from the number
    of completed trials and how many distinct settings they tried."""
    if completed < MIN_IMPORTANCE_TRIALS or distinct < 2:
        return False, (
            f"Parameter importances appear once {MIN_IMPORTANCE_TRIALS} trials with different "
            f"settings have completed ({completed} so far): from fewer, they would show which "
            "settings happened to be tried more than which ones matter."
        )
    if completed < STEADY_IMPORTANCE_TRIALS:
        return True, (
            f"From {completed} completed trials: too few for a steady ranking. Read these as "
            f"hints; they can change a lot as more trials finish (steadier from about "
            f"{STEADY_IMPORTANCE_TRIALS})."
        )
    return True, f"From {completed} completed trials."
