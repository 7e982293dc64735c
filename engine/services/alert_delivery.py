"""Sending the alerts' outbox (alert_deliveries): a webhook POST or an e-mail per message.

`drain_once` is one pass: enqueue threshold crossings (engine/services/alerts.py), then send
every due message. The worker runs it from a daemon thread of its own every ALERT_PASS_S
(engine/execution/worker.py), so no network wait ever sits in the engine's poll loop;
`seedlab alerts drain` runs one pass by hand (cron, tests).

A message whose attempt fails (an HTTP error, a timeout, a refused connection, a mail server
that says no) is tried again after BACKOFF_S[attempt - 1] seconds, up to MAX_ATTEMPTS attempts in
all; then it is `failed` with the last error as a sentence, and the Admin page and `seedlab
alerts deliveries` list it. Each attempt first takes the message for LEASE (one UPDATE), so two
workers on one database never send it twice at once.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import Engine

from db import alerts as alert_store
from db.alerts import AlertRuleRecord, DeliveryRecord
from db.session import utcnow
from db.writes import alerts as alert_writes
from engine.core.settings import Settings
from engine.services.alerts import SmtpConfig, check_metric_thresholds, smtp_config
from engine.services.permissions import Actor, Permission, check

log = logging.getLogger("seedlab.alerts")

# Seconds before the 2nd, 3rd… attempt: 30 s, 2 min, 10 min, 1 h, 1 h (6 attempts in ~2.2 h).
BACKOFF_S: tuple[float, ...] = (30, 120, 600, 3600, 3600)
MAX_ATTEMPTS = len(BACKOFF_S) + 1
# One attempt's network wait at most; a receiver slower than this is retried later.
TIMEOUT_S = 10.0
# An attempt holds its message this long (a worker killed mid-send frees it after).
LEASE = timedelta(minutes=2)
# How often the worker's alert thread makes a pass.
ALERT_PASS_S = 1.0


class DeliveryFailed(Exception):
    """One attempt failed; the message is a sentence for the deliveries list."""


@dataclass(frozen=True)
class PassResult:
    enqueued: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def drain_once(
    db: Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    backoff_s: Sequence[float] = BACKOFF_S,
    timeout_s: float = TIMEOUT_S,
) -> PassResult:
    """One pass: threshold crossings into the outbox, then every due message sent once.
    `now` and `backoff_s` are for tests (a retry without waiting its real delay)."""
    now = now or utcnow()
    enqueued = check_metric_thresholds(db, settings)
    counts = {"sent": 0, "retrying": 0, "failed": 0}
    due = alert_store.due_delivery_ids(db, now)
    smtp = smtp_config(db, settings) if due else None
    for delivery_id in due:
        if not alert_writes.claim_delivery(db, delivery_id, now=now, lease_until=now + LEASE):
            continue  # another worker took it
        outcome = _attempt(db, delivery_id, smtp, now=now, backoff_s=backoff_s, timeout_s=timeout_s)
        counts[outcome] += 1
    return PassResult(enqueued=enqueued, **counts)


def _attempt(
    db: Engine,
    delivery_id: int,
    smtp: SmtpConfig | None,
    *,
    now: datetime,
    backoff_s: Sequence[float],
    timeout_s: float,
) -> str:
    delivery = alert_store.get_delivery(db, delivery_id)
    rule = alert_store.get_rule(db, delivery.rule_id) if delivery else None
    if delivery is None or rule is None:  # removed meanwhile (the rule's removal drops them)
        return "failed"
    try:
        send(rule, delivery, smtp, timeout_s=timeout_s)
    except DeliveryFailed as exc:
        attempts = delivery.attempts  # already counts this attempt (claim_delivery)
        last = attempts >= len(backoff_s) + 1
        retry_at = None if last else now + timedelta(seconds=backoff_s[attempts - 1])
        alert_writes.mark_attempt_failed(db, delivery_id, error=str(exc), retry_at=retry_at)
        log.warning(
            "alert %s (%s %s) attempt %d failed%s: %s",
            delivery_id,
            delivery.event,
            delivery.subject,
            attempts,
            "; giving up" if last else f"; retrying at {retry_at:%H:%M:%S}",
            exc,
        )
        return "failed" if last else "retrying"
    alert_writes.mark_sent(db, delivery_id)
    log.info(
        "alert %s (%s %s) sent to %s", delivery_id, delivery.event, delivery.subject, rule.channel
    )
    return "sent"


def send(
    rule: AlertRuleRecord,
    delivery: DeliveryRecord,
    smtp: SmtpConfig | None,
    *,
    timeout_s: float = TIMEOUT_S,
) -> None:
    """Send one message now; DeliveryFailed (a sentence) when it did not go."""
    payload = json.loads(delivery.payload)
    if rule.channel == "webhook":
        post_webhook(rule.target, payload, timeout_s=timeout_s)
    else:
        if smtp is None or not smtp.configured:
            raise DeliveryFailed(
                "No mail server is set; an admin sets one on the Admin page (Alerts) or with "
                "SEEDLAB_SMTP_HOST, and the message is tried again."
            )
        send_email(smtp, rule.target, payload, timeout_s=timeout_s)


def post_webhook(url: str, payload: dict, *, timeout_s: float = TIMEOUT_S) -> None:
    """POST the payload as JSON; any answer but 2xx is a failure."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "Seedlab alerts"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310 - http(s) only (alerts.check_webhook_url)
            answer.read(1024)
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(
            f"The webhook answered HTTP {exc.code} ({exc.reason}); check its URL is still valid."
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(
            f"The webhook could not be reached ({reason}); check the address and that the "
            "server can reach it."
        ) from None


def send_email(smtp: SmtpConfig, to: str, payload: dict, *, timeout_s: float = TIMEOUT_S) -> None:
    """One plain-text e-mail: the payload's text as subject line and body. STARTTLS when it is
    on and the server offers it; a login when a user is set."""
    text = str(payload.get("text") or "Seedlab alert")
    message = EmailMessage()
    message["Subject"] = "[Seedlab] " + text.split(". http")[0][:150]
    message["From"] = smtp.sender or f"seedlab@{smtp.host}"
    message["To"] = to
    body = [text, ""]
    if payload.get("url"):
        body.append(f"Open it: {payload['url']}")
    message.set_content("\n".join(body))
    try:
        if smtp.port == 465:  # implicit TLS (SMTPS)
            server: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout_s)
        else:
            server = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout_s)
        with server:
            server.ehlo()
            if smtp.starttls and smtp.port != 465 and server.has_extn("starttls"):
                server.starttls(context=ssl.create_default_context())
                server.ehlo()
            if smtp.user:
                server.login(smtp.user, smtp.password)
            server.send_message(message)
    except smtplib.SMTPAuthenticationError:
        raise DeliveryFailed(
            "The mail server refused the login; check the SMTP user and password."
        ) from None
    except smtplib.SMTPException as exc:
        raise DeliveryFailed(f"The mail server refused the message ({exc}).") from None
    except (OSError, TimeoutError) as exc:
        raise DeliveryFailed(
            f"The mail server {smtp.host}:{smtp.port} could not be reached ({exc}); check its "
            "host and port."
        ) from None


def send_test(db: Engine, settings: Settings, actor: Actor, rule_id: int) -> None:
    """Send a test message for a rule now (outside the outbox); DeliveryFailed says why not."""
    check(actor, Permission.MANAGE_ALERTS)
    rule = alert_store.get_rule(db, rule_id)
    if rule is None:
        raise DeliveryFailed(f"No alert {rule_id}; `seedlab alerts list` shows them.")
    payload = {
        "text": f"Seedlab test alert for rule {rule.id}: this target will hear about "
        f"{', '.join(rule.event_list)}.",
        "event": "test",
        "url": settings.public_url or None,
    }
    fake = DeliveryRecord(
        id=0,
        rule_id=rule.id,
        event="test",
        subject="test",
        payload=json.dumps(payload),
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
        last_error=None,
        created_at=utcnow(),
        sent_at=None,
    )
    send(rule, fake, smtp_config(db, settings))
