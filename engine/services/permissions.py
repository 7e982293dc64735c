"""Who may do what: the one role table that the dashboard and the CLI share (no Streamlit).

Every action checks here on the server side, whatever the page shows. Actions on a thing with
an owner (a run, a dataset, a sweep) are `OWNED`: a member may do them only to what they own;
an admin to anything.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
from dataclasses import dataclass
from enum import StrEnum

from engine.core.errors import SeedlabError
from engine.core.settings import Settings

ROLES = ("viewer", "member", "admin")


class Permission(StrEnum):
    BROWSE = "browse"  # see datasets, runs, curves, Compare, Sweeps, Engine
    PREDICT = "predict"  # use the Playground
    UPLOAD = "upload"  # add a dataset (also the demo datasets)
    LAUNCH = "launch"  # queue a run, a clone, a sweep, "launch best"
    CREATE_PROJECT = "create_project"
    CANCEL = "cancel"  # a run or a sweep
    RESUME = "resume"
    EDIT = "edit"  # rename, tag, note, archive
    DELETE = "delete"  # a run or a dataset, with its files
    EXPORT = "export"  # write a model in another format, a bundle, a report
    PROMOTE = "promote"  # register a model version, change its stage
    SERVE = "serve"  # serve a model's production version over HTTP, its token
    MANAGE_USERS = "manage_users"
    VIEW_AUDIT = "view_audit"
    MANAGE_RECIPES = "manage_recipes"  # register or remove code that runs on the server
    MANAGE_STORAGE = "manage_storage"  # clean up old files, back up, restore
    # Alerts on runs and sweeps: members add e-mail alerts on their projects' runs; a webhook
    # target and the SMTP server are admins' only (engine/services/alerts.py checks the role).
    MANAGE_ALERTS = "manage_alerts"
    SHARE = "share"  # make a read-only link to a run, a comparison or a model's Playground


_VIEWER = {Permission.BROWSE, Permission.PREDICT}
_MEMBER = _VIEWER | {
    Permission.UPLOAD,
    Permission.LAUNCH,
    Permission.CREATE_PROJECT,
    Permission.CANCEL,
    Permission.RESUME,
    Permission.EDIT,
    Permission.DELETE,
    Permission.EXPORT,
    Permission.PROMOTE,
    Permission.MANAGE_ALERTS,
    Permission.SHARE,
    Permission.SERVE,
}
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "viewer": frozenset(_VIEWER),
    "member": frozenset(_MEMBER),
    "admin": frozenset(Permission),
}
# Members may do these only to what they own; admins to anything.
OWNED = frozenset({Permission.CANCEL, Permission.RESUME, Permission.EDIT, Permission.DELETE})

_VERBS = {
    Permission.BROWSE: "see this page",
    Permission.PREDICT: "use the Playground",
    Permission.UPLOAD: "add datasets",
    Permission.LAUNCH: "launch runs or sweeps",
    Permission.CREATE_PROJECT: "create projects",
    Permission.CANCEL: "cancel",
    Permission.RESUME: "resume",
    Permission.EDIT: "edit",
    Permission.DELETE: "delete",
    Permission.EXPORT: "export models",
    Permission.PROMOTE: "register or promote models",
    Permission.SERVE: "serve models over HTTP",
    Permission.MANAGE_USERS: "manage users",
    Permission.VIEW_AUDIT: "read the audit log",
    Permission.MANAGE_RECIPES: "register or remove recipes (code that runs on the server)",
    Permission.MANAGE_STORAGE: "clean up, back up or restore storage",
    Permission.MANAGE_ALERTS: "add or remove alerts",
    Permission.SHARE: "make share links",
}


@dataclass(frozen=True)
class Actor:
    """Who is acting: a logged-in user, or the local admin when access control is off."""

    name: str
    role: str


# Access control off (a single-user dashboard on localhost): its one user may do everything.
LOCAL_ADMIN = Actor("local", "admin")


def cli_actor() -> Actor:
    """The CLI acts as a local admin: shell access to this box is access to the DB anyway.
    Its name in the audit log says which OS account acted."""
    try:
        who = getpass.getuser()
    except Exception:  # no login name (some containers)
        who = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return Actor(f"cli:{who}", "admin")


class PermissionDenied(SeedlabError):
    """The actor's role does not allow the action; nothing was changed."""


class _AnyOwner:
    """The owner argument left out: check the role only (may this role ever cancel?)."""

    def __repr__(self) -> str:
        return "ANY_OWNER"


ANY_OWNER = _AnyOwner()


def allowed(
    actor: Actor | None, permission: Permission, owner: str | None | _AnyOwner = ANY_OWNER
) -> bool:
    """Whether `actor` may do `permission` to a thing owned by `owner`. With no owner given,
    whether the role may do it to something (its own, for a member)."""
    if actor is None or permission not in ROLE_PERMISSIONS.get(actor.role, frozenset()):
        return False
    if permission in OWNED and actor.role != "admin" and owner is not ANY_OWNER:
        return owner is not None and owner == actor.name
    return True


def check(
    actor: Actor | None,
    permission: Permission,
    owner: str | None | _AnyOwner = ANY_OWNER,
    what: str = "",
) -> None:
    """Raise PermissionDenied, with a sentence that says why, unless `actor` may do this
    (`allowed`). `what` names the target ("run 12") for owned actions.
    """
    if allowed(actor, permission, owner):
        return
    verb = _VERBS[permission]
    if actor is None:
        raise PermissionDenied(f"Log in to {verb}.")
    if permission not in ROLE_PERMISSIONS.get(actor.role, frozenset()):
        needed = next(r for r in ROLES if permission in ROLE_PERMISSIONS[r])
        raise PermissionDenied(
            f"Your role ({actor.role}) cannot {verb}; an admin can give you the {needed} role "
            f"(seedlab users role {actor.name} {needed})."
        )
    whose = f"belongs to {owner}" if owner else "has no owner"
    what = what or "this"
    raise PermissionDenied(
        f"{what[:1].upper()}{what[1:]} {whose}; a {actor.role} can {verb} only their own. "
        "Ask its owner or an admin."
    )


# ---------------------------------------------------------------- when access control is on


def is_loopback(address: str | None) -> bool:
    """Whether a bind address serves this machine only. None/"" count as loopback: Seedlab's
    own launchers always pass an address (localhost unless --address says otherwise)."""
    if not address or address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to, it may be reachable from outside


def auth_required(address: str | None) -> bool:
    """On when SEEDLAB_AUTH=on or the dashboard binds a non-loopback address. SEEDLAB_AUTH=off
    turns it off even then (a proxy in front that does its own login)."""
    setting = Settings.from_env().auth
    if setting is not None:
        return setting
    return not is_loopback(address)
