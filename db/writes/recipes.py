"""Register and remove recipes. Reads: db/recipes.py."""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from db.models import recipes
from db.session import utcnow, writing


class DuplicateRecipeName(ValueError):
    pass


def add_recipe(
    db: Engine, *, name: str, path: str, entry: str, python: str | None, owner: str | None
) -> int:
    try:
        with writing(db) as conn:
            return conn.execute(
                insert(recipes).values(
                    name=name,
                    path=path,
                    entry=entry,
                    python=python,
                    created_at=utcnow(),
                    owner=owner,
                )
            ).inserted_primary_key[0]
    except IntegrityError:
        raise DuplicateRecipeName(name) from None


def remove_recipe(db: Engine, name: str) -> bool:
    """Forget a recipe; its runs keep their snapshot of the code. False when there is none."""
    with writing(db) as conn:
        return conn.execute(delete(recipes).where(recipes.c.name == name)).rowcount > 0
