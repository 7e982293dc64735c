"""Registered recipes (a team's own training scripts). Writes: db/writes/recipes.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from db.models import recipes
from db.records import RecipeRecord
from db.session import reading


def _record(row: Any) -> RecipeRecord:  # noqa: ANN401 - a SQLAlchemy row
    return RecipeRecord(**{c: getattr(row, c) for c in RecipeRecord.__dataclass_fields__})


def get_recipe(db: Engine, name: str) -> RecipeRecord | None:
    with reading(db) as conn:
        row = conn.execute(select(recipes).where(recipes.c.name == name)).first()
    return None if row is None else _record(row)


def list_recipes(db: Engine) -> list[RecipeRecord]:
    with reading(db) as conn:
        rows = conn.execute(select(recipes).order_by(recipes.c.name)).all()
    return [_record(r) for r in rows]
