"""`seedlab share run|compare|model|list|revoke`: read-only links for people without an account
(engine/services/share_links.py). The CLI acts as the local admin, like every command.

Links start with SEEDLAB_PUBLIC_URL; without it they point at this machine's dashboard
(http://localhost:8501), and the command says to set it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli.common import actor, ready
from engine.services import share_links as sharing

app = typer.Typer(
    help="Read-only links to a run, a comparison or a model's Playground, for people without "
    "an account (they open without logging in, even with access control on).",
    no_args_is_help=True,
)

ExpiresOption = Annotated[
    str,
    typer.Option(
        "--expires",
        help="How long the link works: 7d, 12h, 30m, a date (YYYY-MM-DD, through that day, "
        "UTC), or never",
    ),
]


def _make(kind: str, target: int | str | list[int], expires: str) -> None:
    settings, db = ready()
    made = sharing.create(db, actor(), kind, target, expires)
    base, hint = sharing.cli_base_url(settings.public_url)
    typer.echo(sharing.share_url(made.token, base))
    typer.echo(
        f"Link {made.link.id} to {sharing.describe(made.link)}, read-only; it "
        f"{sharing.expiry_text(made.link.expires_at)}. It is shown only now: copy it. "
        f"Revoke it with `seedlab share revoke {made.link.id}`."
    )
    if hint:
        typer.echo(hint)


@app.command("run")
def share_run(run_id: int, expires: ExpiresOption = sharing.DEFAULT_EXPIRY) -> None:
    """A link to one run's page: status, verdict, results, curves, evaluation."""
    _make("run", run_id, expires)


@app.command("compare")
def share_compare(
    run_ids: Annotated[str, typer.Argument(help="Run ids, comma-separated: 3,4,5")],
    expires: ExpiresOption = sharing.DEFAULT_EXPIRY,
) -> None:
    """A link to these runs side by side: their curves and metrics."""
    _make("compare", run_ids, expires)


@app.command("model")
def share_model(name: str, expires: ExpiresOption = sharing.DEFAULT_EXPIRY) -> None:
    """A link to a registered model's Playground: one input at a time, rate-limited.

    The visitor gets the name's production version, else its newest, at each visit."""
    _make("model", name, expires)


@app.command("list")
def share_list() -> None:
    """The live links: who made each, what it opens, expiry, last opened (UTC)."""
    _, db = ready()
    links = sharing.list_live(db, actor())
    if not links:
        typer.echo("No live share links.")
        return
    typer.echo(f"{'id':>5}  {'made by':<18} {'opens':<28} {'expires':<17} {'last opened':<17} n")
    for link in links:
        expires = "never" if link.expires_at is None else f"{link.expires_at:%Y-%m-%d %H:%M}"
        last = "-" if link.last_opened_at is None else f"{link.last_opened_at:%Y-%m-%d %H:%M}"
        typer.echo(
            f"{link.id:>5}  {link.created_by[:18]:<18} {sharing.describe(link)[:28]:<28} "
            f"{expires:<17} {last:<17} {link.opens}"
        )


@app.command("revoke")
def share_revoke(
    token_or_id: Annotated[str, typer.Argument(help="The link's id (share list), token or URL")],
) -> None:
    """End a link at once: its next click shows the visitor that it was revoked."""
    _, db = ready()
    link = sharing.revoke(db, actor(), token_or_id)
    typer.echo(f"Revoked link {link.id} to {sharing.describe(link)}.")
