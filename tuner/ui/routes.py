"""Dashboard routes: ``/`` (experiments), ``/ui/experiments/...``, ``/ui/login``, static files.

Authentication
    The page shells are public and carry no data. Their scripts call the REST API with the API
    token from ``sessionStorage`` (``Authorization: Bearer``). The login form posts the token to
    ``POST /ui/login``, which compares it in constant time and answers 204 or 403; the page then
    keeps it in ``sessionStorage`` (gone when the tab closes). Without an API token configured
    there is no login. The token is never put into a cookie, a URL or a log line.

Static files
    ``/ui/static/<file>?v=<hash>`` is served from memory with an ETag; with the current hash the
    answer may be cached for a year (``immutable``). plotly's bundle comes from the ``plotly``
    package, gzip-compressed once when the browser accepts it.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.resources
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from tuner.api.auth import check_api_token
from tuner.api.guards import DASHBOARD_CSP
from tuner.errors import NotFound
from tuner.service import Service

HERE = Path(__file__).parent
STATIC = HERE / "static"
PLOTLY = "plotly.min.js"
LONG_CACHE = "public, max-age=31536000, immutable"

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _plotly_bundle() -> bytes:
    try:
        return (importlib.resources.files("plotly") / "package_data" / PLOTLY).read_bytes()
    except FileNotFoundError:  # another layout of the package: ask it for the bundle
        from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

        return str(get_plotlyjs()).encode()


@functools.cache
def _static(name: str) -> StaticFile:
    if name == PLOTLY:
        body = _plotly_bundle()
    else:
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise NotFound(f"no static file {name}")
        body = path.read_bytes()
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type.endswith("javascript"):
        media_type += "; charset=utf-8"
    return StaticFile(body, media_type, hashlib.sha256(body).hexdigest()[:16])


@functools.cache
def _gzipped(name: str) -> bytes | None:
    body = _static(name).body
    return gzip.compress(body, 6, mtime=0) if len(body) > 1024 else None


def static_url(name: str) -> str:
    return f"/ui/static/{name}?v={_static(name).etag}"


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    service = _service(request)
    html = (
        _environment()
        .get_template(template)
        .render(
            auth_required=service.settings.api_token is not None,
            static_url=static_url,
            **{"namespace": "", "name": "", "trial": "", **context},
        )
    )
    return HTMLResponse(
        html, headers={"Cache-Control": "no-cache", "Content-Security-Policy": DASHBOARD_CSP}
    )


@router.get("/", response_class=HTMLResponse)
def experiments_page(request: Request) -> HTMLResponse:
    return _page(request, "experiments.html", page="experiments", title="Experiments")


@router.get("/ui/experiments/{namespace}/{name}", response_class=HTMLResponse)
def experiment_page(request: Request, namespace: str, name: str) -> HTMLResponse:
    return _page(
        request,
        "experiment.html",
        page="experiment",
        title=name,
        namespace=namespace,
        name=name,
    )


@router.get("/ui/experiments/{namespace}/{name}/trials/{trial}", response_class=HTMLResponse)
def trial_page(request: Request, namespace: str, name: str, trial: str) -> HTMLResponse:
    return _page(
        request,
        "trial.html",
        page="trial",
        title=trial,
        namespace=namespace,
        name=name,
        trial=trial,
    )


@router.get("/ui/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return _page(request, "login.html", page="login", title="Log in")


@router.post("/ui/login", status_code=204, response_class=Response)
def login(request: Request, token: Annotated[str, Body(embed=True, max_length=4096)]) -> Response:
    """Check an API token (constant time): 204 when it is right, 403 when not, 429 (with
    ``Retry-After``) after too many wrong ones from the client's address."""
    expected = _service(request).settings.api_token
    if expected is not None:
        check_api_token(request, token, expected)  # 403, or 429 after too many wrong ones
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@router.get("/ui/static/{name}")
def static(
    name: str,
    v: str | None = None,
    if_none_match: Annotated[str | None, Header()] = None,
    accept_encoding: Annotated[str | None, Header()] = None,
) -> Response:
    f = _static(name)
    etag = f'"{f.etag}"'
    headers = {
        "ETag": etag,
        "Cache-Control": LONG_CACHE if v == f.etag else "no-cache",
        "Vary": "Accept-Encoding",
    }
    if if_none_match is not None and etag in if_none_match:
        return Response(status_code=304, headers=headers)
    zipped = _gzipped(name) if "gzip" in (accept_encoding or "") else None
    if zipped is not None:
        headers["Content-Encoding"] = "gzip"
        return Response(zipped, media_type=f.media_type, headers=headers)
    return Response(f.body, media_type=f.media_type, headers=headers)
