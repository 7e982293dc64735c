"""Pages with curves load the charting code while their script runs, not after it.

Streamlit imports Plotly's drawing code (one 4.7 MB JavaScript module) when a page's first chart
arrives. Opening the Run page of a finished run in Chromium on 2 cores, the chart's message came
~0.85 s after navigation and the curves were drawn ~0.5 s later: that module being evaluated
(fetching and compiling it ahead, `<link rel="modulepreload">`, gained nothing). The browser
is idle meanwhile, waiting for the server to run the page. So the HTML of the pages that draw
curves imports the module at once; a module runs once per page, so Streamlit's own import later
finds it ready.

`PreloadCharts` is a plain ASGI middleware (dashboard/web.py installs it): it adds the import
to Streamlit's index.html for CHART_PAGES and passes everything else through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import streamlit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATIC_JS = Path(streamlit.__file__).parent / "static" / "static" / "js"
# The module's file name carries a content hash that changes with Streamlit's version.
CHUNK_GLOB = "PlotlyChart.*.js"
# The pages (URL paths) whose first view draws curves, and Home, whose demo button leads to
# the Run page without loading a page anew: elsewhere the module would cost the browser half a
# second for nothing.
CHART_PAGES = frozenset({"", "/run", "/compare", "/sweeps"})


def preload_tag(js_dir: Path = STATIC_JS) -> bytes:
    """The <script> that imports the charting module; empty when it is not found (another
    Streamlit version may name it otherwise: pages then load it as before)."""
    chunks = sorted(js_dir.glob(CHUNK_GLOB))
    if len(chunks) != 1:
        return b""
    # The same URL as Streamlit's own import of it (relative to the page, like its assets).
    return f'<script type="module">import("./static/js/{chunks[0].name}");</script>'.encode()


def with_tag(html: bytes, tag: bytes) -> bytes:
    """`html` with `tag` just before </head> (unchanged without a </head>)."""
    head_end = html.find(b"</head>")
    if not tag or head_end < 0:
        return html
    return html[:head_end] + tag + html[head_end:]


class PreloadCharts:
    """ASGI middleware: the HTML of a chart page gets the import; all else streams through."""

    def __init__(self, app: ASGIApp, tag: bytes | None = None) -> None:
        self.app = app
        self.tag = preload_tag() if tag is None else tag

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wanted = (
            scope["type"] == "http"
            and scope.get("method") == "GET"
            and scope.get("path", "").rstrip("/") in CHART_PAGES
            and self.tag
        )
        if not wanted:
            await self.app(scope, receive, send)
            return
        # Streamlit's gzip sits inside this middleware: the page's HTML (a few kB) is asked
        # for uncompressed, so the tag can be added to it.
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"accept-encoding"]
        scope = {**scope, "headers": headers}
        start: Message | None = None
        body: list[bytes] = []

        async def send_html(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                kinds = [v for k, v in message.get("headers", []) if k.lower() == b"content-type"]
                if kinds and kinds[0].startswith(b"text/html"):
                    start = message  # held until the whole body is here
                    return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            page = with_tag(b"".join(body), self.tag)
            kept = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*kept, (b"content-length", str(len(page)).encode())]})
            await send({"type": "http.response.body", "body": page, "more_body": False})

        await self.app(scope, receive, send_html)
