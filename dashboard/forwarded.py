"""Who is on the other end of a request: the browser's address and scheme, believing a reverse
proxy's X-Forwarded-* headers only from SEEDLAB_TRUSTED_PROXIES. Shared by the login routes
(dashboard/web.py) and the served-model routes' request log (dashboard/serve_api.py)."""

from __future__ import annotations

import ipaddress

from starlette.requests import Request

from engine.core.settings import Settings, proxy_networks
from engine.services import accounts


def client_address(request: Request, settings: Settings) -> str:
    """The browser's address: the connection's peer, or, when the peer is a trusted proxy
    (SEEDLAB_TRUSTED_PROXIES), the address that proxy saw, from X-Forwarded-For read right to
    left past the trusted proxies (anything further left is the client's to forge)."""
    peer = request.client.host if request.client else accounts.UNKNOWN_ADDRESS
    trusted = proxy_networks(settings.trusted_proxies)
    if not is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not is_trusted(hop, trusted):
            return hop
    return peer


def is_trusted(address: str, trusted: tuple) -> bool:
    """Whether `address` is in one of the `trusted` networks (False for a non-address)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def served_over_https(request: Request, settings: Settings) -> bool:
    """Whether the browser reached us over HTTPS, so the cookie gets Secure: SEEDLAB_HTTPS when
    set, else the request's own scheme or a trusted proxy's X-Forwarded-Proto."""
    if settings.https is not None:
        return settings.https
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return forwarded == "https" and is_trusted(peer, proxy_networks(settings.trusted_proxies))
