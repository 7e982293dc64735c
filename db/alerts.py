"""Alert rules, their outbox (deliveries) and the Admin page's settings. Writes:
db/writes/alerts.py."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, or_, select

from db.models import alert_deliveries, alert_rules, app_settings, run_summaries, runs
from db.session import reading


@dataclass(frozen=True)
class AlertRuleRecord:
    id: int
    project_id: int | None
    run_id: int | None
    events: str
    metric_key: str | None
    metric_op: str | None
    metric_value: float | None
    channel: str
    target: str
    created_by: str | None
    created_at: datetime
    enabled: bool

    @property
    def event_list(self) -> list[str]:
        return [e for e in self.events.split(",") if e]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    rule_id: int
    event: str
    subject: str
    payload: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rule(row: Any) -> AlertRuleRecord:  # noqa: ANN401 - a SQLAlchemy row
    return AlertRuleRecord(**{c: getattr(row, c) for c in AlertRuleRecord.__dataclass_fields__})


def _delivery(row: Any) -> DeliveryRecord:  # noqa: ANN401 - a SQLAlchemy row
    return DeliveryRecord(**{c: getattr(row, c) for c in DeliveryRecord.__dataclass_fields__})


def get_rule(db: Engine, rule_id: int) -> AlertRuleRecord | None:
    with reading(db) as conn:
        row = conn.execute(select(alert_rules).where(alert_rules.c.id == rule_id)).first()
    return None if row is None else _rule(row)


def list_rules(db: Engine, *, enabled_only: bool = False) -> list[AlertRuleRecord]:
    query = select(alert_rules).order_by(alert_rules.c.id)
    if enabled_only:
        query = query.where(alert_rules.c.enabled.is_(True))
    with reading(db) as conn:
        return [_rule(r) for r in conn.execute(query).all()]


def rules_for(db: Engine, *, project_id: int | None, run_id: int | None) -> list[AlertRuleRecord]:
    """The enabled rules watching a run (its own, and its project's) or, with run_id None, a
    project (a sweep's end)."""
    scopes = [alert_rules.c.project_id == project_id] if project_id is not None else []
    if run_id is not None:
        scopes.append(alert_rules.c.run_id == run_id)
    if not scopes:
        return []
    query = (
        select(alert_rules)
        .where(alert_rules.c.enabled.is_(True), or_(*scopes))
        .order_by(alert_rules.c.id)
    )
    with reading(db) as conn:
        return [_rule(r) for r in conn.execute(query).all()]


def metric_candidates(db: Engine, rule: AlertRuleRecord) -> list[tuple[int, float]]:
    """(run id, latest value of the rule's metric) of the running runs in the rule's scope not
    yet enqueued for this rule: what a threshold rule looks at on each pass. One query on
    run_summaries (the latest value per key), never the metric points. A run that ends is
    checked once more on its final values where it ends (engine/services/alerts.run_ended)."""
    if rule.metric_key is None:
        return []
    scope = (
        runs.c.id == rule.run_id
        if rule.run_id is not None
        else runs.c.project_id == rule.project_id
    )
    query = (
        select(runs.c.id, run_summaries.c.last_value)
        .join(run_summaries, run_summaries.c.run_id == runs.c.id)
        .where(
            scope,
            run_summaries.c.key == rule.metric_key,
            runs.c.status == "running",
        )
    )
    done = select(alert_deliveries.c.subject).where(
        alert_deliveries.c.rule_id == rule.id, alert_deliveries.c.event == "metric"
    )
    with reading(db) as conn:
        # Runs this rule already enqueued are left out here, so a pass writes nothing (takes
        # no write lock) when nothing new crossed.
        sent = set(conn.execute(done).scalars().all())
        rows = conn.execute(query).all()
    return [(int(r.id), float(r.last_value)) for r in rows if f"run:{r.id}" not in sent]


def list_deliveries(
    db: Engine, *, status: str | None = None, rule_id: int | None = None, limit: int = 200
) -> list[DeliveryRecord]:
    """The latest deliveries first."""
    query = select(alert_deliveries).order_by(alert_deliveries.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(alert_deliveries.c.status == status)
    if rule_id is not None:
        query = query.where(alert_deliveries.c.rule_id == rule_id)
    with reading(db) as conn:
        return [_delivery(r) for r in conn.execute(query).all()]


def due_delivery_ids(db: Engine, now: datetime, limit: int = 50) -> list[int]:
    """Pending deliveries whose next attempt is due, oldest first."""
    query = (
        select(alert_deliveries.c.id)
        .where(alert_deliveries.c.status == "pending", alert_deliveries.c.next_attempt_at <= now)
        .order_by(alert_deliveries.c.next_attempt_at, alert_deliveries.c.id)
        .limit(limit)
    )
    with reading(db) as conn:
        return [int(i) for i in conn.execute(query).scalars().all()]


def get_delivery(db: Engine, delivery_id: int) -> DeliveryRecord | None:
    with reading(db) as conn:
        row = conn.execute(
            select(alert_deliveries).where(alert_deliveries.c.id == delivery_id)
        ).first()
    return None if row is None else _delivery(row)


def app_setting_values(db: Engine, prefix: str = "") -> dict[str, str]:
    """The Admin page's settings whose key starts with `prefix`."""
    query = select(app_settings.c.key, app_settings.c.value)
    if prefix:
        query = query.where(app_settings.c.key.startswith(prefix))
    with reading(db) as conn:
        return {r.key: r.value for r in conn.execute(query).all()}
