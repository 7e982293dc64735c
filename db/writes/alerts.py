"""Alert rules, the outbox and the Admin page's settings. Reads: db/alerts.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.dialects import postgresql, sqlite

from db.models import alert_deliveries, alert_rules, app_settings
from db.session import utcnow, writing


def add_rule(db: Engine, **values: Any) -> int:  # noqa: ANN401 - the rule's columns
    with writing(db) as conn:
        return conn.execute(
            insert(alert_rules).values(created_at=utcnow(), enabled=True, **values)
        ).inserted_primary_key[0]


def remove_rule(db: Engine, rule_id: int) -> bool:
    """Forget a rule and its deliveries; False when there is none."""
    with writing(db) as conn:
        conn.execute(delete(alert_deliveries).where(alert_deliveries.c.rule_id == rule_id))
        return conn.execute(delete(alert_rules).where(alert_rules.c.id == rule_id)).rowcount > 0


def enqueue(db: Engine, rows: Iterable[Mapping[str, Any]]) -> int:
    """Add outbox rows (rule_id, event, subject, payload); a row whose (rule, event, subject) is
    already there is skipped, so an event noticed twice is still sent once. Returns how many
    were added."""
    now = utcnow()
    values = [
        {**row, "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
        for row in rows
    ]
    if not values:
        return 0
    with writing(db) as conn:
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        added = 0
        for value in values:  # one by one: RETURNING says which were new (rowcount is -1 on
            # psycopg for an upsert)
            statement = (
                dialect_insert(alert_deliveries)
                .values(**value)
                .on_conflict_do_nothing(index_elements=["rule_id", "event", "subject"])
                .returning(alert_deliveries.c.id)
            )
            added += conn.execute(statement).first() is not None
        return added


def claim_delivery(db: Engine, delivery_id: int, *, now: datetime, lease_until: datetime) -> bool:
    """Take a due delivery for one attempt (attempts += 1; no one else takes it before
    `lease_until`): two workers on one database never send the same message twice at once."""
    with writing(db) as conn:
        return (
            conn.execute(
                update(alert_deliveries)
                .where(
                    alert_deliveries.c.id == delivery_id,
                    alert_deliveries.c.status == "pending",
                    alert_deliveries.c.next_attempt_at <= now,
                )
                .values(next_attempt_at=lease_until, attempts=alert_deliveries.c.attempts + 1)
            ).rowcount
            > 0
        )


def mark_sent(db: Engine, delivery_id: int) -> None:
    with writing(db) as conn:
        conn.execute(
            update(alert_deliveries)
            .where(alert_deliveries.c.id == delivery_id)
            .values(status="sent", sent_at=utcnow(), last_error=None)
        )


def mark_attempt_failed(
    db: Engine, delivery_id: int, *, error: str, retry_at: datetime | None
) -> None:
    """An attempt failed: try again at `retry_at`, or (None) give up for good."""
    values: dict[str, Any] = {"last_error": error}
    if retry_at is None:
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = retry_at
    with writing(db) as conn:
        conn.execute(
            update(alert_deliveries).where(alert_deliveries.c.id == delivery_id).values(**values)
        )


def set_app_settings(db: Engine, values: Mapping[str, str | None]) -> None:
    """Store settings (a None value removes the key, so its environment variable applies)."""
    with writing(db) as conn:
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        for key, value in values.items():
            if value is None:
                conn.execute(delete(app_settings).where(app_settings.c.key == key))
                continue
            statement = dialect_insert(app_settings).values(key=key, value=value)
            conn.execute(
                statement.on_conflict_do_update(index_elements=["key"], set_={"value": value})
            )
