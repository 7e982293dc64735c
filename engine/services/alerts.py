"""Alerts: tell someone when a run completes, fails, is cancelled, gets a verdict warning or
crosses a metric threshold, and when a sweep ends (issue 23).

A rule (table alert_rules) watches a project's runs or one run, for some events, and names one
target: a webhook URL (JSON that Slack and similar tools accept) or an e-mail address. When an
event happens, `run_ended` / `sweep_ended` / `check_metric_thresholds` put one message per
matching rule in an outbox (alert_deliveries); the worker sends them from a thread of its own
(engine/services/alert_delivery.py), so a slow or dead receiver never holds back a run.

Never blocking the engine: the engine calls `notify_run_ended` / `notify_sweep_ended`, which
log and swallow any error: a broken alert never fails a run or a sweep.

Once only: the outbox's UNIQUE (rule, event, subject) key means an event noticed twice (the
runner's end and the worker's reap, or two metric passes) is enqueued, and so sent, once.

Who may add what (checked here, whatever a page shows): members add e-mail alerts
(Permission.MANAGE_ALERTS); only admins add webhook targets, since a URL can point at an
address inside the network that the server reaches and the member does not; only admins set
the mail server. A member removes their own rules; an admin any.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from db import alerts as alert_store
from db import projects as project_store
from db import runs as run_store
from db import sweeps as sweep_store
from db.alerts import AlertRuleRecord, DeliveryRecord
from db.records import RunRecord
from db.writes import alerts as alert_writes
from engine.core.catalog import HEADLINE_METRIC, metric_label
from engine.core.errors import SeedlabError
from engine.core.formatting import format_metric
from engine.core.settings import Settings
from engine.core.verdicts import warning_label, warnings_of
from engine.services.audit import record
from engine.services.permissions import Actor, Permission, PermissionDenied, check

log = logging.getLogger("seedlab.alerts")

RUN_EVENTS = ("completed", "failed", "cancelled", "warning", "metric")
EVENTS = (*RUN_EVENTS, "sweep_ended")
EVENT_HELP = {
    "completed": "a run completed",
    "failed": "a run failed",
    "cancelled": "a run was cancelled",
    "warning": "a run completed with a verdict warning (diverged, leakage, overfitting…)",
    "metric": "a metric crossed the rule's threshold (--metric KEY --above X | --below X)",
    "sweep_ended": "a sweep ended (completed, cancelled or failed)",
}
CHANNELS = ("webhook", "email")
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+$")


class AlertError(SeedlabError):
    """A rule that cannot be added or removed as asked; the message says what to change."""


# ---------------------------------------------------------------- the mail server


@dataclass(frozen=True)
class SmtpConfig:
    """The mail server alert e-mails go through: the Admin page's values, else SEEDLAB_SMTP_*."""

    host: str
    port: int
    user: str
    password: str
    sender: str
    starttls: bool

    @property
    def configured(self) -> bool:
        return bool(self.host)


_SMTP_KEYS = ("host", "port", "user", "password", "from", "starttls")


def smtp_config(db: Engine, settings: Settings) -> SmtpConfig:
    """The effective mail server: each value set on the Admin page (table app_settings, keys
    smtp.*) overrides its SEEDLAB_SMTP_* variable."""
    stored = alert_store.app_setting_values(db, "smtp.")

    def value(key: str, default: str) -> str:
        return stored.get(f"smtp.{key}", default)

    port = value("port", str(settings.smtp_port))
    return SmtpConfig(
        host=value("host", settings.smtp_host),
        port=int(port) if port.isdigit() else settings.smtp_port,
        user=value("user", settings.smtp_user),
        password=value("password", settings.smtp_password),
        sender=value("from", settings.smtp_from),
        starttls=value("starttls", "on" if settings.smtp_starttls else "off") == "on",
    )


def save_smtp_config(
    db: Engine,
    actor: Actor,
    *,
    host: str,
    port: int,
    user: str = "",
    password: str | None = None,
    sender: str = "",
    starttls: bool = True,
) -> None:
    """Set the mail server (admins). `password` None keeps the stored one; an empty host clears
    every stored value, so the SEEDLAB_SMTP_* variables apply again."""
    _require_admin(actor, "set the mail server")
    host = host.strip()
    if not host:
        alert_writes.set_app_settings(db, {f"smtp.{k}": None for k in _SMTP_KEYS})
        record(db, actor, "alerts smtp", "mail server", "cleared (environment applies)")
        return
    if not 0 < int(port) < 65536:
        raise AlertError(f"The mail server's port must be between 1 and 65535, got {port}.")
    if sender and not _EMAIL.match(sender.strip()):
        raise AlertError(f"The sender {sender!r} is not an e-mail address (like lab@example.com).")
    values: dict[str, str | None] = {
        "smtp.host": host,
        "smtp.port": str(int(port)),
        "smtp.user": user.strip(),
        "smtp.from": sender.strip(),
        "smtp.starttls": "on" if starttls else "off",
    }
    if password is not None:
        values["smtp.password"] = password
    alert_writes.set_app_settings(db, values)
    record(db, actor, "alerts smtp", "mail server", f"{host}:{int(port)}")


# ---------------------------------------------------------------- rules


def _require_admin(actor: Actor, verb: str) -> None:
    check(actor, Permission.MANAGE_ALERTS)
    if actor.role != "admin":
        raise PermissionDenied(
            f"Only an admin can {verb}: a webhook URL can point at addresses inside your "
            "network that the server reaches. Add an e-mail alert instead, or ask an admin."
        )


def parse_events(text: str | list[str]) -> list[str]:
    """ "failed,completed" → ["failed", "completed"]; AlertError naming what is accepted."""
    parts = text if isinstance(text, list) else text.split(",")
    events = [p.strip().lower() for p in parts if p.strip()]
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise AlertError(
            f"Unknown alert event {', '.join(unknown) or '(none)'}; choose among "
            f"{', '.join(EVENTS)} (comma-separated)."
        )
    return list(dict.fromkeys(events))


def check_webhook_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AlertError(
            f"The webhook {url!r} is not a web address; give the full URL your chat tool gave "
            "you, starting with https://."
        )
    return url


def check_email(address: str) -> str:
    address = address.strip()
    if not _EMAIL.match(address):
        raise AlertError(
            f"{address!r} is not an e-mail address; give one address like ana@example.com."
        )
    return address


def add_rule(
    db: Engine,
    settings: Settings,
    actor: Actor,
    *,
    events: str | list[str],
    project: str | int | None = None,
    run_id: int | None = None,
    webhook: str | None = None,
    email: str | None = None,
    metric_key: str | None = None,
    above: float | None = None,
    below: float | None = None,
) -> int:
    """Add a rule; returns its id. One scope (a project by name or id, or a run), one target
    (a webhook, admins only, or an e-mail address), and for the `metric` event one threshold."""
    check(actor, Permission.MANAGE_ALERTS)
    wanted = parse_events(events)
    if (webhook is None) == (email is None):
        raise AlertError("Give one target: a webhook URL (--webhook) or an e-mail (--email).")
    if webhook is not None:
        _require_admin(actor, "add a webhook alert")
        channel, target = "webhook", check_webhook_url(webhook)
    else:
        channel, target = "email", check_email(email or "")
        if not smtp_config(db, settings).configured:
            raise AlertError(
                "No mail server is set, so e-mail alerts cannot be sent; an admin sets one on "
                "the Admin page (Alerts) or with SEEDLAB_SMTP_HOST."
            )
    project_id = _project_id(db, project) if project is not None else None
    if run_id is not None:
        run = run_store.get_run(db, run_id)
        if run is None:
            raise AlertError(f"No run {run_id}; `seedlab runs list` shows the runs.")
        if project_id is not None and project_id != run.project_id:
            raise AlertError(f"Run {run_id} is not in that project; give the run or the project.")
        project_id = None  # a run's rule watches that run only
    elif project_id is None:
        raise AlertError("Say what to watch: a project (--project NAME) or a run (--run ID).")
    if "sweep_ended" in wanted and run_id is not None:
        raise AlertError("A sweep's end is a project's event; add it with --project, not --run.")
    op, value = _threshold(wanted, metric_key, above, below)
    rule_id = alert_writes.add_rule(
        db,
        project_id=project_id,
        run_id=run_id,
        events=",".join(wanted),
        metric_key=metric_key.strip() if metric_key and op else None,
        metric_op=op,
        metric_value=value,
        channel=channel,
        target=target,
        created_by=actor.name,
    )
    scope = f"run {run_id}" if run_id is not None else f"project {project_id}"
    record(db, actor, "alerts add", f"alert {rule_id}", f"{scope} {','.join(wanted)} {channel}")
    return rule_id


def _project_id(db: Engine, project: str | int) -> int:
    text = str(project).strip()
    found = (
        project_store.get_project(db, int(text))
        if text.isdigit()
        else project_store.get_project_by_name(db, text)
    )
    if found is None:
        raise AlertError(f"No project {text!r}; `seedlab projects list` shows the projects.")
    return found.id


def _threshold(
    events: list[str], key: str | None, above: float | None, below: float | None
) -> tuple[str | None, float | None]:
    if "metric" not in events:
        if key or above is not None or below is not None:
            raise AlertError("A threshold (--metric with --above/--below) needs the metric event.")
        return None, None
    if not key or not key.strip() or (above is None) == (below is None):
        raise AlertError(
            "The metric event needs a metric and one threshold, e.g. "
            "--metric val_loss --above 0.5 (or --below 0.8 for an accuracy)."
        )
    return ("above", float(above)) if above is not None else ("below", float(below))  # type: ignore[arg-type]


def list_rules(db: Engine) -> list[AlertRuleRecord]:
    return alert_store.list_rules(db)


def remove_rule(db: Engine, actor: Actor, rule_id: int) -> None:
    """Remove a rule and its deliveries (a member: only a rule they added)."""
    check(actor, Permission.MANAGE_ALERTS)
    rule = alert_store.get_rule(db, rule_id)
    if rule is None:
        raise AlertError(f"No alert {rule_id}; `seedlab alerts list` shows them.")
    if actor.role != "admin" and rule.created_by != actor.name:
        raise PermissionDenied(
            f"Alert {rule_id} was added by {rule.created_by or 'someone else'}; a member can "
            "remove only their own. Ask an admin."
        )
    alert_writes.remove_rule(db, rule_id)
    record(db, actor, "alerts remove", f"alert {rule_id}", rule.target)


def list_deliveries(
    db: Engine, *, status: str | None = None, rule_id: int | None = None, limit: int = 200
) -> list[DeliveryRecord]:
    return alert_store.list_deliveries(db, status=status, rule_id=rule_id, limit=limit)


def describe_rule(db: Engine, rule: AlertRuleRecord) -> str:
    """ "project default" / "run 12" and the events, in words for a list."""
    if rule.run_id is not None:
        scope = f"run {rule.run_id}"
    else:
        project = project_store.get_project(db, rule.project_id) if rule.project_id else None
        scope = f"project {project.name if project else rule.project_id}"
    events = ", ".join(rule.event_list)
    if rule.metric_key:
        events += f" ({rule.metric_key} {rule.metric_op} {rule.metric_value:g})"
    return f"{scope}: {events}"


# ---------------------------------------------------------------- enqueueing (the engine)


def notify_run_ended(db: Engine, settings: Settings | None, run_id: int) -> int:
    """`run_ended`, never raising: the engine calls it where a run ends, and an alert must
    never fail a run. Returns the messages enqueued (0 on an error, which is logged).
    `settings` None: read from the environment (for callers that have none at hand)."""
    try:
        return run_ended(db, settings or Settings.from_env(), run_id)
    except Exception:
        log.exception("alerts for run %s not enqueued", run_id)
        return 0


def notify_sweep_ended(db: Engine, settings: Settings | None, sweep_id: int) -> int:
    """`sweep_ended`, never raising (as notify_run_ended)."""
    try:
        return sweep_ended(db, settings or Settings.from_env(), sweep_id)
    except Exception:
        log.exception("alerts for sweep %s not enqueued", sweep_id)
        return 0


def run_ended(db: Engine, settings: Settings, run_id: int) -> int:
    """Enqueue the messages of every rule watching a run that has ended: its status
    (completed, failed, cancelled), `warning` when it completed with verdict warnings, and
    `metric` when its last value is past a rule's threshold. Nothing for a run still active."""
    run = run_store.get_run(db, run_id)
    if run is None or run.status not in ("completed", "failed", "cancelled"):
        return 0
    rules = alert_store.rules_for(db, project_id=run.project_id, run_id=run.id)
    if not rules:
        return 0
    warned = run.status == "completed" and bool(warnings_of(run.verdict))
    rows = []
    for rule in rules:
        events = rule.event_list
        if run.status in events:
            rows.append(_row(rule, run.status, run=run, settings=settings, db=db))
        if warned and "warning" in events:
            rows.append(_row(rule, "warning", run=run, settings=settings, db=db))
        if "metric" in events and rule.metric_key:
            value = run.last(rule.metric_key)
            if value is not None and crossed(rule, value):
                rows.append(_row(rule, "metric", run=run, settings=settings, db=db, value=value))
    return alert_writes.enqueue(db, rows)


def sweep_ended(db: Engine, settings: Settings, sweep_id: int) -> int:
    """Enqueue the `sweep_ended` messages of the rules on a finished sweep's project."""
    sweep = sweep_store.get_sweep(db, sweep_id)
    if sweep is None or sweep.status == "running":
        return 0
    rules = [
        r
        for r in alert_store.rules_for(db, project_id=sweep.project_id, run_id=None)
        if "sweep_ended" in r.event_list and r.run_id is None
    ]
    best = run_store.get_run(db, sweep.best_run_id) if sweep.best_run_id else None
    text = f"Sweep {sweep.id} “{sweep.name}” {sweep.status}"
    if best is not None:
        value = best.last(sweep.objective)
        text += f"; best run {best.id} “{best.name}”"
        if value is not None:
            text += f" with {metric_label(sweep.objective)} {format_metric(sweep.objective, value)}"
    if sweep.error:
        text += f": {sweep.error.splitlines()[0]}"
    url = _link(settings, f"sweeps?sweep={sweep.id}")
    payload = {
        "text": f"{text}. {url}".strip() if url else f"{text}.",
        "event": "sweep_ended",
        "sweep": {"id": sweep.id, "name": sweep.name, "status": sweep.status},
        "best_run": None if best is None else {"id": best.id, "name": best.name},
        "project": _project_name(db, sweep.project_id),
        "url": url or None,
    }
    rows = [
        {
            "rule_id": r.id,
            "event": "sweep_ended",
            "subject": f"sweep:{sweep.id}",
            "payload": json.dumps(payload),
        }
        for r in rules
    ]
    return alert_writes.enqueue(db, rows)


def check_metric_thresholds(db: Engine, settings: Settings) -> int:
    """The worker's pass over threshold rules: the running runs in scope whose last value of
    the rule's metric is past its threshold get one message each (per rule and run, thanks to
    the outbox's unique key; a run's final values are checked by run_ended). One read query per
    threshold rule; no write unless something crossed."""
    rows = []
    for rule in alert_store.list_rules(db, enabled_only=True):
        if "metric" not in rule.event_list or not rule.metric_key:
            continue
        for run_id, value in alert_store.metric_candidates(db, rule):
            if crossed(rule, value):
                run = run_store.get_run(db, run_id)
                if run is not None:
                    rows.append(
                        _row(rule, "metric", run=run, settings=settings, db=db, value=value)
                    )
    return alert_writes.enqueue(db, rows)


def crossed(rule: AlertRuleRecord, value: float) -> bool:
    if rule.metric_value is None or value != value:  # NaN crosses nothing
        return False
    return value > rule.metric_value if rule.metric_op == "above" else value < rule.metric_value


# ---------------------------------------------------------------- messages


def _link(settings: Settings, path: str) -> str:
    """A link into the dashboard, when SEEDLAB_PUBLIC_URL says where it is ("" otherwise: an
    engine has no browser address to guess from)."""
    return f"{settings.public_url.rstrip('/')}/{path}" if settings.public_url else ""


def _project_name(db: Engine, project_id: int | None) -> str | None:
    project = project_store.get_project(db, project_id) if project_id is not None else None
    return project.name if project else None


def _headline(run: RunRecord) -> tuple[str, float] | None:
    for key, _ in HEADLINE_METRIC.values():
        value = run.last(key)
        if value is not None:
            return key, value
    return None


def run_message(
    run: RunRecord,
    event: str,
    *,
    project: str | None,
    url: str,
    value: float | None = None,
    rule: AlertRuleRecord | None = None,
) -> dict[str, Any]:
    """The JSON a webhook receives for a run's event: `text` (what Slack shows) and the same
    facts as fields for tools that read them."""
    where = f" in project {project}" if project else ""
    name = f"Run {run.id} “{run.name}”"
    headline = _headline(run)
    score = (
        f": {metric_label(headline[0])} {format_metric(headline[0], headline[1])}"
        if headline
        else ""
    )
    warnings = [warning_label(w.get("code", "")) for w in warnings_of(run.verdict)]
    if event == "completed":
        text = f"{name} completed{where}{score}"
        if warnings:
            text += f" (warning: {', '.join(warnings)})"
    elif event == "warning":
        text = f"{name} completed{where} with a warning: {', '.join(warnings)}"
    elif event == "failed":
        reason = (run.error or "no reason recorded").strip().splitlines()[0][:300]
        text = f"{name} failed{where}: {reason}"
    elif event == "cancelled":
        text = f"{name} was cancelled{where}"
    else:  # metric
        key = rule.metric_key if rule else ""
        text = (
            f"{name}{where}: {metric_label(key or '')} is {format_metric(key or '', value)}, "
            f"{rule.metric_op if rule else ''} the alert's threshold "
            f"{format_metric(key or '', rule.metric_value if rule else None)}"
        )
    verdict = None
    if run.status == "completed" and isinstance(run.verdict, dict):
        verdict = {"warnings": warnings, "summary": run.verdict.get("short") or ""}
    return {
        "text": f"{text}. {url}" if url else f"{text}.",
        "event": event,
        "run": {"id": run.id, "name": run.name, "status": run.status},
        "project": project,
        "status": run.status,
        "verdict": verdict,
        "metric": (
            {
                "key": rule.metric_key,
                "value": value,
                "op": rule.metric_op,
                "threshold": rule.metric_value,
            }
            if event == "metric" and rule is not None
            else None
        ),
        "url": url or None,
    }


def _row(
    rule: AlertRuleRecord,
    event: str,
    *,
    run: RunRecord,
    settings: Settings,
    db: Engine,
    value: float | None = None,
) -> dict[str, Any]:
    payload = run_message(
        run,
        event,
        project=_project_name(db, run.project_id),
        url=_link(settings, f"run?run={run.id}"),
        value=value,
        rule=rule,
    )
    return {
        "rule_id": rule.id,
        "event": event,
        "subject": f"run:{run.id}",
        "payload": json.dumps(payload),
    }
