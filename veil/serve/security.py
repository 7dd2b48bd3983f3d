"""Who may talk to ``veil serve``, and from where.

* Loopback (the default bind): anyone on this machine, as with any local tool.
* Any other address needs an access token. Only its sha256 is kept (in the job store);
  clients send it as ``Authorization: Bearer ...`` or, for the browser, as an HttpOnly
  cookie set by ``POST /login``. Tokens never appear in URLs, so never in logs.
* Cross-site requests: a state-changing request (anything but GET/HEAD/OPTIONS) must carry
  the ``X-Veil-CSRF`` header (a form or a cross-site ``fetch`` cannot add it without a CORS
  preflight, which this server never grants) and, when the browser sends ``Origin`` or
  ``Sec-Fetch-Site``, come from this very origin.
* Logging: one line per request with method, path (no query string) and status; never
  bodies, frames, crops, embeddings or tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import time
from urllib.parse import urlsplit

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["hash_token", "is_loopback", "Guard", "CSRF_HEADER", "COOKIE"]

log = logging.getLogger("veil.serve")
CSRF_HEADER = "x-veil-csrf"
COOKIE = "veil_token"
_SAFE = ("GET", "HEAD", "OPTIONS")
_OPEN_PATHS = ("/login", "/static/login.html")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Guard(BaseHTTPMiddleware):
    def __init__(self, app, token_sha256: str | None):
        super().__init__(app)
        self.token_sha256 = token_sha256

    async def dispatch(self, request: Request, call_next) -> Response:
        t0 = time.perf_counter()
        refusal = self._refuse(request)
        response = refusal if refusal is not None else await call_next(request)
        log.info("%s %s %d %.0f ms", request.method, request.url.path, response.status_code,
                 (time.perf_counter() - t0) * 1000)
        return response

    def _refuse(self, request: Request) -> Response | None:
        if request.method not in _SAFE:
            if request.headers.get(CSRF_HEADER) != "1" and request.url.path != "/login":
                return JSONResponse({"detail": "missing the X-Veil-CSRF header (cross-site request?)"}, 403)
            if not _same_origin(request):
                return JSONResponse({"detail": "cross-site request refused"}, 403)
        if self.token_sha256 is None or request.url.path in _OPEN_PATHS:
            return None
        token = request.cookies.get(COOKIE)
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if token and hmac.compare_digest(hash_token(token), self.token_sha256):
            return None
        if request.method == "GET" and not request.url.path.startswith("/api/"):
            return Response(status_code=303, headers={"location": "/login"})
        return JSONResponse({"detail": "access token required"}, 401)


def _same_origin(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin != "null" and urlsplit(origin).netloc == request.headers.get("host")
