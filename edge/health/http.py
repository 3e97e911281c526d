"""A minimal HTTP/1.1 server on the daemon's event loop: ``GET`` of a few fixed paths.

No thread and no framework: the pages are read from the loop's own state (edge/health), which
only the loop thread may touch. One request per connection, then close (RFC 9112 9.6: the
response carries ``Connection: close``). What a misbehaving client gets:

* nothing complete within ``read_timeout``: ``408 Request Timeout`` (RFC 9110 15.5.9), close;
* a request head over ``max_head`` bytes: ``431`` (RFC 6585 5), close;
* a request line or header field that does not parse (RFC 9112 3, 5.1: no whitespace before
  the colon; 5.2: obsolete line folding refused), or an HTTP/1.1 request without exactly one
  ``Host`` (RFC 9112 3.2): ``400``; a version other than 1.x: ``505``;
* a path not served: ``404``; a method other than GET or HEAD on one: ``405`` with ``Allow``;
* a reader too slow for the response: dropped after ``write_timeout``;
* beyond ``max_connections`` at once: closed without an answer.

Request heads must end lines with CRLF (RFC 9112 2.2 lets a server also take a bare LF; this
one does not, such a request times out). A request body is never read: every response
closes the connection.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import urlsplit

from edge.health.serve import Connections

log = logging.getLogger(__name__)

#: a page: the request's header fields (names in lower case) -> (body, content type)
Page = Callable[[Mapping[str, str]], tuple[bytes, str]]

# RFC 9110 5.6.2: token = 1*tchar
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# RFC 9112 2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT
_VERSION = re.compile(r"HTTP/(\d)\.(\d)")


@dataclass(frozen=True, slots=True)
class HttpLimits:
    read_timeout: float = 5.0
    write_timeout: float = 10.0
    max_head: int = 8192
    max_connections: int = 8


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    version: tuple[int, int]
    headers: dict[str, str]


class RequestError(ValueError):
    """A request this server answers with an error ``status``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def parse_head(head: bytes) -> Request:
    """Parse a request head (request line and fields, up to the empty line; RFC 9112 2-5)."""
    # RFC 9112 2.2: parsed as octets in an ASCII superset; field values are opaque here
    lines = head.decode("latin-1").split("\r\n")
    while lines and lines[0] == "":  # RFC 9112 2.2: empty lines before the request line
        lines.pop(0)
    if not lines:
        raise RequestError(400, "empty request")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]:
        raise RequestError(400, "malformed request line")
    method, target, version_text = parts
    version = _VERSION.fullmatch(version_text)
    if version is None:
        raise RequestError(400, "malformed HTTP version")
    if version.group(1) != "1":
        raise RequestError(505, f"HTTP version {version_text} not supported")
    headers: dict[str, str] = {}
    hosts = 0
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            raise RequestError(400, "obsolete line folding")
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise RequestError(400, "malformed header field")
        key = name.lower()
        hosts += key == "host"
        headers[key] = value.strip(" \t")
    number = (int(version.group(1)), int(version.group(2)))
    if number >= (1, 1) and hosts != 1:
        raise RequestError(400, "an HTTP/1.1 request needs exactly one Host field")
    # RFC 9112 3.2.1, 3.2.2: origin-form, or absolute-form (which a server must accept)
    try:
        path = urlsplit(target).path
    except ValueError as exc:  # e.g. an unclosed IPv6 literal in an absolute-form target
        raise RequestError(400, f"malformed request target: {exc}") from None
    return Request(method, path, number, headers)


def response(
    status: int,
    body: bytes = b"",
    content_type: str = "text/plain; charset=utf-8",
    *,
    head_only: bool = False,
    extra: tuple[str, ...] = (),
) -> bytes:
    """A complete response; ``Date`` as RFC 9110 6.6.1 asks of an origin server with a clock."""
    fields = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
        f"Date: {formatdate(usegmt=True)}",
        "Server: santebus",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
        *extra,
    )
    head = ("\r\n".join(fields) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


class HttpServer:
    """Serves ``pages`` (path -> :data:`Page`); :meth:`start`, then :meth:`close` at stop."""

    def __init__(self, pages: Mapping[str, Page], limits: HttpLimits | None = None) -> None:
        self.pages = dict(pages)
        self.limits = limits or HttpLimits()
        self._server: asyncio.Server | None = None
        #: connections being served (aborted at close)
        self._clients = Connections()

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port``; raises OSError (e.g. the port is in use)."""
        self._server = await asyncio.start_server(
            self._serve, host, port, limit=self.limits.max_head
        )

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        """Stop listening and drop the connections still open."""
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._clients.drop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._clients) >= self.limits.max_connections:
            # Closed unanswered: a 503 would race the reset that closing a socket with an
            # unread request causes (the client may never see it).
            writer.transport.abort()
            return
        await self._clients.serve(
            writer,
            lambda: self._answer(reader),
            write_timeout=self.limits.write_timeout,
            log=log,
            dropped="http client dropped error=%r",
        )

    async def _answer(self, reader: asyncio.StreamReader) -> bytes | None:
        """The response to the request on ``reader``; None when the client went away."""
        try:
            async with asyncio.timeout(self.limits.read_timeout):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            return response(408, b"request timeout\n")
        except asyncio.LimitOverrunError:
            return response(431, b"request head too large\n")
        except asyncio.IncompleteReadError:
            return None
        try:
            request = parse_head(head)
        except RequestError as exc:
            return response(exc.status, f"{exc}\n".encode())
        page = self.pages.get(request.path)
        if page is None:
            return response(404, b"not found\n")
        if request.method not in ("GET", "HEAD"):
            return response(405, b"method not allowed\n", extra=("Allow: GET, HEAD",))
        try:
            body, content_type = page(request.headers)
        except Exception:  # a page's failure is this request's, never the daemon's
            log.exception("http page failed path=%s", request.path)
            return response(500, b"internal error\n")
        return response(200, body, content_type, head_only=request.method == "HEAD")
