"""`seedlab alerts add|list|remove|deliveries|test|drain|smtp`: be told when runs end.

The engine's worker sends the messages (engine/services/alert_delivery.py); `drain` makes one
pass by hand (for cron, or with no worker running).
"""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli.common import actor, fail, print_json, ready

app = typer.Typer(
    help="Alerts: a webhook or an e-mail when runs complete, fail or cross a threshold.",
    no_args_is_help=True,
)


@app.command("add")
def alerts_add(
    on: Annotated[
        str,
        typer.Option(
            "--on",
            help="Events, comma-separated: completed, failed, cancelled, warning, metric, "
            "sweep_ended",
        ),
    ],
    project: Annotated[str | None, typer.Option(help="Watch this project's runs")] = None,
    run: Annotated[int | None, typer.Option("--run", help="Watch this one run")] = None,
    webhook: Annotated[str | None, typer.Option(help="POST JSON here (Slack accepts it)")] = None,
    email: Annotated[str | None, typer.Option(help="Send an e-mail here")] = None,
    metric: Annotated[
        str | None, typer.Option(help="For --on metric: the metric key, e.g. val_loss")
    ] = None,
    above: Annotated[float | None, typer.Option(help="Alert when the metric goes above")] = None,
    below: Annotated[float | None, typer.Option(help="Alert when the metric goes below")] = None,
) -> None:
    """Add an alert rule; prints its id."""
    from engine.services.alerts import add_rule

    settings, db = ready()
    rule_id = add_rule(
        db,
        settings,
        actor(),
        events=on,
        project=project,
        run_id=run,
        webhook=webhook,
        email=email,
        metric_key=metric,
        above=above,
        below=below,
    )
    typer.echo(f"Added alert {rule_id}. `seedlab alerts test {rule_id}` sends a test message.")


@app.command("list")
def alerts_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The alert rules."""
    from engine.services.alerts import describe_rule, list_rules

    _, db = ready()
    rules = list_rules(db)
    if as_json:
        print_json([r.to_dict() for r in rules])
        return
    if not rules:
        typer.echo(
            "No alerts yet; add one with `seedlab alerts add --project P --on failed "
            "--email you@example.com`."
        )
    for r in rules:
        state = "" if r.enabled else " (off)"
        typer.echo(f"{r.id}\t{describe_rule(db, r)}\t→ {r.channel} {r.target}{state}")


@app.command("remove")
def alerts_remove(rule_id: Annotated[int, typer.Argument(help="The alert's id")]) -> None:
    """Remove an alert rule and its delivery history."""
    from engine.services.alerts import remove_rule

    _, db = ready()
    remove_rule(db, actor(), rule_id)
    typer.echo(f"Removed alert {rule_id}.")


@app.command("deliveries")
def alerts_deliveries(
    status: Annotated[str | None, typer.Option(help="Only these: pending, sent or failed")] = None,
    limit: Annotated[int, typer.Option(help="The latest N")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The messages sent, waiting or given up on, latest first, with their last error."""
    from engine.services.alerts import list_deliveries

    if status is not None and status not in ("pending", "sent", "failed"):
        fail(f"--status must be pending, sent or failed, got {status!r}.")
    _, db = ready()
    rows = list_deliveries(db, status=status, limit=limit)
    if as_json:
        print_json([d.to_dict() for d in rows])
        return
    if not rows:
        typer.echo("No alert messages yet.")
    for d in rows:
        line = f"{d.id}\talert {d.rule_id}\t{d.event} {d.subject}\t{d.status}"
        line += f" after {d.attempts} attempt{'s' if d.attempts != 1 else ''}"
        if d.status == "pending" and d.attempts:
            line += f", next at {d.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC"
        if d.last_error and d.status != "sent":
            line += f"\t{d.last_error}"
        typer.echo(line)


@app.command("test")
def alerts_test(rule_id: Annotated[int, typer.Argument(help="The alert's id")]) -> None:
    """Send a test message to an alert's target now."""
    from engine.services.alert_delivery import DeliveryFailed, send_test

    settings, db = ready()
    try:
        send_test(db, settings, actor(), rule_id)
    except DeliveryFailed as exc:
        fail(str(exc))
    typer.echo(f"Sent a test message for alert {rule_id}.")


@app.command("drain")
def alerts_drain() -> None:
    """Send the due messages once (the engine's worker does this every second)."""
    from engine.services.alert_delivery import drain_once

    settings, db = ready()
    result = drain_once(db, settings)
    typer.echo(
        f"{result.sent} sent, {result.retrying} to retry later, {result.failed} given up"
        f" ({result.enqueued} threshold alerts queued)."
    )


@app.command("smtp")
def alerts_smtp(
    host: Annotated[str, typer.Option(help="Mail server host; empty: back to SEEDLAB_SMTP_*")],
    port: Annotated[int, typer.Option(help="Its port (587 STARTTLS, 465 TLS, 25)")] = 587,
    user: Annotated[str, typer.Option(help="Login name (empty: no login)")] = "",
    password: Annotated[
        str | None, typer.Option(help="Password (left out: keep the stored one)")
    ] = None,
    sender: Annotated[str, typer.Option("--from", help="Sender address")] = "",
    starttls: Annotated[bool, typer.Option(help="STARTTLS when the server offers it")] = True,
) -> None:
    """Set the mail server e-mail alerts go through (as the Admin page does; admins)."""
    from engine.services.alerts import save_smtp_config

    _, db = ready()
    save_smtp_config(
        db,
        actor(),
        host=host,
        port=port,
        user=user,
        password=password,
        sender=sender,
        starttls=starttls,
    )
    typer.echo("Saved the mail server." if host.strip() else "Cleared; SEEDLAB_SMTP_* apply.")
