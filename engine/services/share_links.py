"""Read-only share links: one view of Seedlab (a run, a comparison of runs, a model's Playground)
for someone without an account, even while access control is on.

A link is `<public address>/?share=<token>`. The token is 256 random bits
(`secrets.token_urlsafe(32)`); only its SHA-256 is stored (nobody can guess a random token
from its hash, so no slow hash is needed), so the URL is shown once, when made. What a link
opens is its record's `kind` and `target`, fixed when it is made: the dashboard's share view
(dashboard/share_view.py) reads them from the record at every click and ignores every query
parameter but the token, so a link to run 3 never shows run 4.

Who may: members and admins (Permission.SHARE) share anything they can see (everyone may browse
every run); viewers cannot. The maker or an admin revokes a link; an admin lists every live
link, a member their own. Each make and revoke is in the audit log.

A link ends when revoked or when it expires: `parse_expiry` takes "7d", "12h", "30m", a date
("2026-12-31": valid through that day, UTC) or "never". A resolved link that has ended is
refused with a sentence the visitor can act on (LinkRefused).

A shared Playground predicts at most SEEDLAB_SHARE_PREDICT_PER_MIN times a minute per link
(`allow_prediction`): a moving window kept in this process's memory (`limits`), which is where
the dashboard that answers the link runs.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import Engine

from db import registry
from db import runs as run_store
from db import share_links as link_store
from db.session import utcnow
from db.share_links import ShareLinkRecord
from db.writes import share_links as link_writes
from engine.core.errors import SeedlabError
from engine.services import audit
from engine.services.permissions import Actor, Permission, PermissionDenied, allowed, check

KINDS = ("run", "compare", "model")
# The expiry choices the Share buttons offer; the CLI takes any `parse_expiry` text.
EXPIRY_CHOICES = {"1 day": "1d", "7 days": "7d", "30 days": "30d", "Never": "never"}
DEFAULT_EXPIRY = "7d"
# A comparison shared by link: more runs than this is no longer a view one reads.
MAX_COMPARE_RUNS = 50
# Where a CLI without SEEDLAB_PUBLIC_URL points its links (the dashboard's default address).
LOCAL_URL = "http://localhost:8501"
PUBLIC_URL_HINT = (
    "Set SEEDLAB_PUBLIC_URL to the address people outside use to reach the dashboard "
    "(such as https://seedlab.example.com) so links work beyond this machine."
)
_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$", re.IGNORECASE)
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
# A token as `token_urlsafe(32)` makes it: 43 characters of A-Z a-z 0-9 - _.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


class ShareError(SeedlabError):
    """A link that cannot be made or revoked as asked; nothing was changed."""


class LinkRefused(SeedlabError):
    """A link that opens nothing (unknown, revoked, expired); the message is for its visitor."""


UNKNOWN = (
    "This share link is not valid: it may be mistyped or cut short. Ask the person who sent it "
    "for the link again."
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---------------------------------------------------------------- expiry


def parse_expiry(text: str | None, now: datetime | None = None) -> datetime | None:
    """When a link made at `now` (UTC) ends: "7d", "12h", "30m" from now; a date YYYY-MM-DD
    (through that whole day, UTC); "never" (None). ShareError with the accepted forms else."""
    now = now or utcnow()
    raw = (text or "").strip()
    if raw.lower() == "never":
        return None
    match = _DURATION.match(raw)
    if match:
        amount = int(match.group(1))
        if amount <= 0:
            raise ShareError(f"A link must last longer than {raw!r}: use 1d, 12h, 30m or more.")
        return now + timedelta(**{_UNITS[match.group(2).lower()]: amount})
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ShareError(
            f"Cannot read the expiry {raw!r}: use a duration such as 7d, 12h or 30m, a date "
            "such as 2026-12-31, or never."
        ) from None
    ends = datetime.combine(day + timedelta(days=1), time())
    if ends <= now:
        raise ShareError(f"{raw} has passed: give a date from today on, or a duration such as 7d.")
    return ends


def expiry_text(expires_at: datetime | None) -> str:
    return "never expires" if expires_at is None else f"expires {expires_at:%Y-%m-%d %H:%M} UTC"


# ---------------------------------------------------------------- what a link opens


def _target(db: Engine, kind: str, target: int | str | list[int]) -> dict:
    """The record's target for `kind`, checked against the database (ShareError when it names
    something that is not there)."""
    if kind == "run":
        run_id = _run_id(target)
        if run_store.get_run(db, run_id) is None:
            raise ShareError(f"There is no run #{run_id} to share.")
        return {"run": run_id}
    if kind == "compare":
        ids = list(dict.fromkeys(_run_id(t) for t in _as_list(target)))
        if not ids:
            raise ShareError("Name the runs to compare, such as 3,4,5.")
        if len(ids) > MAX_COMPARE_RUNS:
            raise ShareError(
                f"A shared comparison holds at most {MAX_COMPARE_RUNS} runs; pick fewer."
            )
        missing = [i for i in ids if run_store.get_run(db, i) is None]
        if missing:
            raise ShareError(f"There is no run {', '.join(f'#{i}' for i in missing)} to share.")
        return {"runs": ids}
    if kind == "model":
        if isinstance(target, int):  # a Playground on a run that is not registered
            run = run_store.get_run(db, target)
            if run is None or run.status != "completed" or run.source != "builtin":
                raise ShareError(
                    f"Run #{target} has no model Seedlab can load (only completed runs trained "
                    "by Seedlab do); share the run's page instead."
                )
            return {"model_run": target}
        name = str(target).strip()
        if registry.get_model(db, name) is None:
            raise ShareError(
                f"No registered model {name!r}. Register one first "
                "(seedlab models register RUN_ID NAME), or share a run."
            )
        return {"model": name}
    raise ShareError(f"A link shares a run, a comparison or a model, not {kind!r}.")


def _as_list(target: int | str | list[int]) -> list:
    if isinstance(target, str):
        return [p for p in re.split(r"[,\s]+", target) if p]
    return list(target) if isinstance(target, list | tuple) else [target]


def _run_id(value: object) -> int:
    text = str(value).strip().lstrip("#")
    if not text.isdigit():
        raise ShareError(f"{value!r} is not a run id: use numbers such as 3 or 3,4,5.")
    return int(text)


def describe(link: ShareLinkRecord) -> str:
    """What a link opens, in a few words: "run 3", "runs 3, 4, 5", "model churn"."""
    target = link.target
    if link.kind == "run":
        return f"run {target.get('run')}"
    if link.kind == "compare":
        return "runs " + ", ".join(str(i) for i in target.get("runs") or [])
    if "model" in target:
        return f"model {target['model']}"
    return f"the model of run {target.get('model_run')}"


# ---------------------------------------------------------------- make, list, revoke


@dataclass(frozen=True)
class CreatedLink:
    """A link just made: `token` is readable only now (the database keeps its hash)."""

    link: ShareLinkRecord
    token: str


def create(
    db: Engine,
    actor: Actor,
    kind: str,
    target: int | str | list[int],
    expires: str | None = DEFAULT_EXPIRY,
) -> CreatedLink:
    """Make a link to one view; PermissionDenied for a viewer, ShareError for a target that is
    not there or an expiry that cannot be read."""
    check(actor, Permission.SHARE)
    expires_at = parse_expiry(expires)
    record = _target(db, kind, target)
    token = secrets.token_urlsafe(32)
    link_id = link_writes.add_link(
        db,
        token_hash=hash_token(token),
        kind=kind,
        target=record,
        created_by=actor.name,
        expires_at=expires_at,
    )
    link = link_store.get_link(db, link_id)
    assert link is not None
    audit.record(
        db, actor, "share_create", describe(link), f"link {link_id}, {expiry_text(expires_at)}"
    )
    return CreatedLink(link, token)


def list_live(db: Engine, actor: Actor) -> list[ShareLinkRecord]:
    """Live links (not revoked, not expired), newest first: every one for an admin, a member's
    own for a member."""
    check(actor, Permission.SHARE)
    mine = None if actor.role == "admin" else actor.name
    return link_store.live_links(db, utcnow(), created_by=mine)


def find(db: Engine, token_or_id: str | int) -> ShareLinkRecord | None:
    """A link by its id, its token, or its whole URL (…?share=TOKEN)."""
    text = str(token_or_id).strip()
    if "share=" in text:
        text = text.split("share=", 1)[1].split("&", 1)[0].split("#", 1)[0]
    if text.isdigit() and len(text) <= 12:
        return link_store.get_link(db, int(text))
    if not _TOKEN.match(text):
        return None
    return link_store.link_by_hash(db, hash_token(text))


def revoke(db: Engine, actor: Actor, token_or_id: str | int) -> ShareLinkRecord:
    """Revoke a link (by id, token or URL) at once: its next click shows the refusal. Its maker
    or an admin may."""
    check(actor, Permission.SHARE)
    link = find(db, token_or_id)
    if link is None:
        raise ShareError(
            f"No share link {str(token_or_id)[:60]!r}: give its id (seedlab share list) or its "
            "token."
        )
    if actor.role != "admin" and link.created_by != actor.name:
        raise PermissionDenied(
            f"Link {link.id} was made by {link.created_by}; a {actor.role} can revoke only their "
            "own. Ask them or an admin."
        )
    if link.revoked_at is not None:
        raise ShareError(f"Link {link.id} was revoked already, by {link.revoked_by}.")
    link_writes.revoke_link(db, link.id, actor.name)
    audit.record(db, actor, "share_revoke", describe(link), f"link {link.id}")
    revoked = link_store.get_link(db, link.id)
    assert revoked is not None
    return revoked


def may_share(actor: Actor | None) -> bool:
    """For showing a Share button enabled; `create` checks again."""
    return allowed(actor, Permission.SHARE)


# ---------------------------------------------------------------- open


def resolve(db: Engine, token: str | None) -> ShareLinkRecord:
    """The live link of `token`; LinkRefused, whose message is for the visitor, when the token
    is unknown, revoked or expired. Called at every click of a share session, so a revoked or
    expired link stops at the next one."""
    text = (token or "").strip()
    link = link_store.link_by_hash(db, hash_token(text)) if _TOKEN.match(text) else None
    if link is None:
        raise LinkRefused(UNKNOWN)
    if link.revoked_at is not None:
        raise LinkRefused(
            f"This share link was revoked on {link.revoked_at:%Y-%m-%d}. Ask the person who sent "
            "it for a new one."
        )
    if link.expires_at is not None and link.expires_at <= utcnow():
        raise LinkRefused(
            f"This share link expired on {link.expires_at:%Y-%m-%d %H:%M} UTC. Ask the person who "
            "sent it for a new one."
        )
    return link


def opened(db: Engine, link: ShareLinkRecord) -> None:
    """Count one opening of the link (once per visitor's session, not per click)."""
    link_writes.mark_opened(db, link.id)


def share_url(token: str, base_url: str) -> str:
    """The link: `base_url` (SEEDLAB_PUBLIC_URL, or the address the browser used) and the token."""
    return f"{base_url.rstrip('/')}/?share={token}"


def cli_base_url(public_url: str) -> tuple[str, str | None]:
    """The CLI's base address: SEEDLAB_PUBLIC_URL, else this machine's dashboard with a hint
    (the second value) to set SEEDLAB_PUBLIC_URL."""
    if public_url:
        return public_url, None
    return LOCAL_URL, PUBLIC_URL_HINT


# ---------------------------------------------------------------- a shared Playground's limit

_limiter = MovingWindowRateLimiter(MemoryStorage())


def allow_prediction(link_id: int, per_minute: int) -> bool:
    """Whether a shared Playground may answer one more prediction now: at most `per_minute`
    (SEEDLAB_SHARE_PREDICT_PER_MIN) in any 60 s, per link, across all its visitors."""
    return _limiter.hit(RateLimitItemPerMinute(per_minute), "share_predict", str(link_id))
