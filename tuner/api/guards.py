"""What keeps web pages of other sites away from the API, whatever the API token.

``tuner serve`` runs the commands of the specs it is sent, so a request forged by a web page
the user happens to visit would run code on this host. Binding to loopback does not stop a
browser on the same host, so every request passes these checks first (an ASGI middleware, so
that event streams are not buffered):

Host
    With :attr:`Settings.allowed_hosts` set, the ``Host`` header must name one of them (403
    otherwise). A page of ``evil.example`` whose DNS name is re-pointed at 127.0.0.1 (DNS
    rebinding) reaches this server with ``Host: evil.example``.
Origin
    A browser names the page that sent a request in ``Origin``; a request that changes things
    (any method but GET, HEAD, OPTIONS) from another origin is refused (403). Non-browser
    clients send no ``Origin``.
Content-Type
    A request body must be JSON or YAML (415 otherwise). A page can send ``text/plain``, a form
    or no type at all without asking the server first (no CORS preflight); the JSON and YAML
    types need a preflight, which this server never grants: it sends no CORS headers at all.
Response headers
    ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy:
    no-referrer``, ``Cross-Origin-Resource-Policy: same-origin`` on every answer, and
    ``Content-Security-Policy: frame-ancestors 'none'`` unless the route set a policy of its own
    (the dashboard's pages set :data:`DASHBOARD_CSP`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
"""Body types accepted (and ``application/*+json``); none is one a page may send without a
CORS preflight (``text/plain``, ``multipart/form-data``, ``application/x-www-form-urlencoded``)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

DASHBOARD_CSP = "; ".join(
    [
        "default-src 'self'",
        # plotly's WebGL traces (parcoords) compile shaders' glue code with `new Function`;
        # scripts still come from this server only, never inline or from another origin.
        "script-src 'self' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",  # plotly sets styles from its script
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""The dashboard's Content-Security-Policy: its own scripts only, and never in a frame."""

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def host_name(host: str) -> str:
    """The name of a ``Host`` header or URL authority, without port or brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def allowed_hosts(
    bound: str, explicit: Iterable[str] = (), *, also: Iterable[str] = ()
) -> frozenset[str] | None:
    """The names a server bound to ``bound`` answers to: ``explicit`` ones, ``also`` (e.g.
    the host of the URL trials are given), the bound name, and the loopback names for a
    loopback bind. ``None`` (any name) for a wildcard bind without ``explicit`` names: such a
    server is reached by names it cannot know, and it always requires an API token."""
    names = {host_name(h) for h in explicit if h}
    bound = host_name(bound)
    if bound in ("", "0.0.0.0", "::"):
        if not names:
            return None
        names |= LOOPBACK_NAMES
    else:
        names.add(bound)
    if bound in LOOPBACK_NAMES or bound.startswith("127."):
        names |= LOOPBACK_NAMES
    names |= {host_name(h) for h in also if h}
    return frozenset(names)


def refusal(scope: Scope, allowed: frozenset[str] | None) -> tuple[int, str] | None:
    """Why a request is refused (status, message), or ``None``."""
    headers = Headers(scope=scope)
    host = headers.get("host", "")
    if allowed is not None and host_name(host) not in allowed:
        return 403, (
            f"this server does not answer to the host name {host_name(host)!r} (a guard "
            "against DNS rebinding); address it by a name it was started with "
            "(tuner serve --allowed-host NAME adds one)"
        )
    method = scope.get("method", "GET")
    if method in SAFE_METHODS:
        return None
    origin = headers.get("origin")
    # Another origin (or "null", a sandboxed page's) than the one the request is addressed to
    if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
        return 403, f"cross-origin request refused (from {origin!r})"
    if headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers:
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if not (media in JSON_TYPES or media in YAML_TYPES or media.endswith("+json")):
            return 415, (
                f"unsupported Content-Type {media or '(none)'!r}: send application/json "
                "(or application/yaml for a spec)"
            )
    return None


class Guards:
    """The ASGI middleware of this module's checks and headers."""

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str] | None = None) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS:
                    headers.append(key.decode(), value.decode())
                if "content-security-policy" not in headers:
                    headers.append("content-security-policy", "frame-ancestors 'none'")
            await send(message)

        problem = refusal(scope, self.allowed_hosts)
        if problem is None:
            await self.app(scope, receive, send_with_headers)
            return
        status, message = problem
        body = json.dumps({"detail": message, "errors": []}).encode()
        await send_with_headers(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send_with_headers({"type": "http.response.body", "body": body})
