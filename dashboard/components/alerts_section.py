"""The Admin page's Alerts tab: the alert rules (add, test, remove), the mail server alert
e-mails go through, and every message with its outcome (sent, waiting for a retry, given up);
and the Run page's "Alert me" (an e-mail when that run ends).

The same actions as `seedlab alerts …`, through engine/services/alerts.py, which checks the role
again whatever this page shows (webhooks and the mail server are admins' only).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from dashboard import auth, data
from db import projects as project_store
from db.records import RunRecord
from engine.core.settings import Settings
from engine.services import alert_delivery, alerts
from engine.services.permissions import Permission


def show(db: Engine, settings: Settings) -> None:
    st.caption(
        "Be told when runs complete, fail, are cancelled, get a verdict warning or cross a "
        "metric threshold, and when sweeps end: by a webhook (Slack and similar tools accept "
        "its JSON) or by e-mail. The engine sends them; a receiver that fails is tried again "
        "after 30 s, 2 min, 10 min and 1 h. Also `seedlab alerts add|list|remove|deliveries`."
    )
    _rules(db, settings)
    st.subheader("Messages")
    _deliveries(db)
    st.subheader("Mail server")
    _smtp(db, settings)


def _rules(db: Engine, settings: Settings) -> None:
    rules = alerts.list_rules(db)
    if rules:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "alert": r.id,
                        "watches": alerts.describe_rule(db, r),
                        "to": f"{r.channel}: {r.target}",
                        "added by": r.created_by or "",
                        "added": data.local_time(r.created_at),
                    }
                    for r in rules
                ]
            ),
            hide_index=True,
        )
    else:
        st.info("No alerts yet: add one below.")
    projects = project_store.list_projects(db)
    with st.form("alert_add", clear_on_submit=True):
        st.markdown("**Add an alert**")
        left, right = st.columns(2)
        project = left.selectbox("Project", [p.name for p in projects], key="alert_project")
        run_text = right.text_input(
            "Or one run (its id)", placeholder="the whole project", key="alert_run"
        )
        events = st.multiselect(
            "When",
            alerts.EVENTS,
            default=["failed"],
            key="alert_events",
            format_func=lambda e: f"{e} — {alerts.EVENT_HELP[e]}",
        )
        metric_cols = st.columns(3)
        metric_key = metric_cols[0].text_input("Metric (for 'metric')", placeholder="val_loss")
        metric_op = metric_cols[1].selectbox("Goes", ("above", "below"))
        metric_value = metric_cols[2].number_input("Threshold", value=0.0, format="%g")
        channel = st.radio("Send by", ("email", "webhook"), horizontal=True, key="alert_channel")
        target = st.text_input(
            "To",
            placeholder="ana@example.com, or the webhook URL (https://hooks.slack.com/…)",
            key="alert_target",
        )
        submitted = st.form_submit_button("Add alert", icon=":material/notifications:")
    if submitted:
        with data.shown_errors("adding the alert"):
            run_id = int(run_text) if run_text.strip().isdigit() else None
            if run_text.strip() and run_id is None:
                raise alerts.AlertError(f"{run_text!r} is not a run id; give a number like 12.")
            metric = metric_key.strip() if "metric" in events else None
            rule_id = alerts.add_rule(
                db,
                settings,
                auth.require(Permission.MANAGE_ALERTS),
                events=list(events),
                project=None if run_id is not None else project,
                run_id=run_id,
                webhook=target if channel == "webhook" else None,
                email=target if channel == "email" else None,
                metric_key=metric,
                above=metric_value if metric and metric_op == "above" else None,
                below=metric_value if metric and metric_op == "below" else None,
            )
            data.flash(f"Added alert {rule_id}.")
            st.rerun()
    if not rules:
        return
    cols = st.columns([2, 1, 1])
    chosen = cols[0].selectbox(
        "Alert",
        [r.id for r in rules],
        format_func=lambda i: f"{i}: {next(r.target for r in rules if r.id == i)}",
    )
    if cols[1].button("Send a test", icon=":material/send:"):
        with data.shown_errors("sending the test"):
            try:
                alert_delivery.send_test(
                    db, settings, auth.require(Permission.MANAGE_ALERTS), chosen
                )
            except alert_delivery.DeliveryFailed as exc:
                st.error(str(exc))
            else:
                st.success(f"Sent a test message for alert {chosen}.")
    if cols[2].button("Remove", icon=":material/delete:"):
        with data.shown_errors("removing the alert"):
            alerts.remove_rule(db, auth.require(Permission.MANAGE_ALERTS), chosen)
            data.flash(f"Removed alert {chosen}.")
            st.rerun()


def _deliveries(db: Engine) -> None:
    rows = alerts.list_deliveries(db, limit=200)
    if not rows:
        st.caption("No messages yet: they appear here once a watched run or sweep ends.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "alert": d.rule_id,
                    "event": d.event,
                    "about": d.subject.replace(":", " "),
                    "outcome": d.status,
                    "attempts": d.attempts,
                    "next try": data.local_time(d.next_attempt_at)
                    if d.status == "pending"
                    else None,
                    "sent": data.local_time(d.sent_at),
                    "last error": d.last_error if d.status != "sent" else "",
                }
                for d in rows
            ]
        ),
        hide_index=True,
    )


def _smtp(db: Engine, settings: Settings) -> None:
    current = alerts.smtp_config(db, settings)
    st.caption(
        "Values saved here override SEEDLAB_SMTP_*; save an empty host to use the environment's "
        "again. " + ("Not set: e-mail alerts cannot be added." if not current.configured else "")
    )
    with st.form("alert_smtp"):
        cols = st.columns([3, 1])
        host = cols[0].text_input(
            "Host", value=current.host, placeholder="smtp.example.com", key="smtp_host"
        )
        port = cols[1].number_input("Port", 1, 65535, value=current.port, key="smtp_port")
        cols = st.columns(2)
        user = cols[0].text_input("User", value=current.user, help="Empty: no login")
        password = cols[1].text_input("Password", type="password", help="Empty: keep the one saved")
        sender = st.text_input(
            "From", value=current.sender, placeholder="seedlab@example.com", key="smtp_from"
        )
        starttls = st.checkbox("STARTTLS when the server offers it", value=current.starttls)
        saved = st.form_submit_button("Save mail server", icon=":material/save:")
    if saved:
        with data.shown_errors("saving the mail server"):
            alerts.save_smtp_config(
                db,
                auth.require(Permission.MANAGE_ALERTS),
                host=host,
                port=int(port),
                user=user,
                password=password or None,
                sender=sender,
                starttls=starttls,
            )
            data.flash("Saved the mail server.")
            st.rerun()


RUN_PAGE_EVENTS = ("completed", "failed", "cancelled", "warning")


def alert_me(db: Engine, settings: Settings, run: RunRecord) -> None:
    """The Run page's "Alert me": an e-mail when this run ends (members and admins; webhooks and
    project-wide rules are on the Admin page or `seedlab alerts add`)."""
    watching = [r for r in alerts.list_rules(db) if r.run_id == run.id]
    label = f"Alert me ({len(watching)} set)" if watching else "Alert me"
    with st.expander(label, icon=":material/notifications:"):
        for rule in watching:
            st.caption(f"Alert {rule.id}: {', '.join(rule.event_list)} → {rule.target}")
        if not auth.can(Permission.MANAGE_ALERTS):
            st.caption("A member or an admin can add alerts.")
            return
        if not alerts.smtp_config(db, settings).configured:
            st.caption(
                "No mail server is set, so e-mail alerts cannot be sent yet; an admin sets one "
                "on the Admin page (Alerts) or with SEEDLAB_SMTP_HOST."
            )
            return
        with st.form(f"alert_me_{run.id}", border=False, clear_on_submit=True):
            email = st.text_input("E-mail me at", placeholder="ana@example.com", key="alert_me_to")
            events = st.multiselect(
                "When it",
                RUN_PAGE_EVENTS,
                default=["completed", "failed"],
                format_func=lambda e: "gets a verdict warning" if e == "warning" else e,
                key="alert_me_events",
            )
            submitted = st.form_submit_button("Alert me", icon=":material/notifications:")
        if submitted:
            with data.shown_errors("adding the alert"):
                rule_id = alerts.add_rule(
                    db,
                    settings,
                    auth.require(Permission.MANAGE_ALERTS),
                    events=list(events),
                    run_id=run.id,
                    email=email,
                )
                data.flash(f"Added alert {rule_id}: an e-mail to {email.strip()}.")
                st.rerun()
