"""The health endpoint's HTTP server: answers, refusals, and clients that misbehave."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Mapping

import pytest

from edge.health.http import HttpLimits, HttpServer, RequestError, parse_head

LIMITS = HttpLimits(read_timeout=0.3, write_timeout=0.3, max_head=1024, max_connections=2)


def _page(headers: Mapping[str, str]) -> tuple[bytes, str]:
    return f"hello {headers.get('accept', '-')}\n".encode(), "text/plain; version=0.0.4"


def _broken(headers: Mapping[str, str]) -> tuple[bytes, str]:
    raise RuntimeError("a bug in a page")


def _serve(test: Callable[[HttpServer], Awaitable[None]], **pages: object) -> None:
    async def main() -> None:
        server = HttpServer({"/metrics": _page, "/broken": _broken}, LIMITS)
        await server.start("127.0.0.1", 0)
        try:
            await test(server)
        finally:
            await server.close()

    asyncio.run(main())


async def _exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_get_and_head_of_the_page() -> None:
    async def test(server: HttpServer) -> None:
        get = b"GET /metrics?name=x HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n"
        answer = await _exchange(server.port, get)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\nConnection: close" in head
        assert b"\r\nContent-Type: text/plain; version=0.0.4" in head
        assert f"\r\nContent-Length: {len(body)}".encode() in head
        assert body == b"hello text/plain\n"
        answer = await _exchange(server.port, get.replace(b"GET", b"HEAD"))
        assert answer.startswith(b"HTTP/1.1 200")
        assert answer.endswith(b"\r\n\r\n")  # no body
        # HTTP/1.0 needs no Host; absolute-form targets are accepted (RFC 9112 3.2.2)
        answer = await _exchange(server.port, b"GET http://x/metrics HTTP/1.0\r\n\r\n")
        assert answer.endswith(b"hello -\n")

    _serve(test)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab", 405),
        (b"\x00\x16\x03\x01garbage\xff\r\n\r\n", 400),
        (b"GET /metrics\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\n\r\n", 400),  # no Host (RFC 9112 3.2)
        (b"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", 400),  # space before the colon
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
        (b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /broken HTTP/1.1\r\nHost: x\r\n\r\n", 500),
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 2000 + b"\r\n\r\n", 431),
    ],
)
def test_refusals(request_bytes: bytes, status: int) -> None:
    async def test(server: HttpServer) -> None:
        answer = await _exchange(server.port, request_bytes)
        assert _status(answer) == status
        if status == 405:
            assert b"\r\nAllow: GET, HEAD\r\n" in answer
        # the server is unharmed
        answer = await _exchange(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(answer) == 200

    _serve(test)


def test_a_slow_client_gets_408_and_the_connection_is_closed() -> None:
    async def test(server: HttpServer) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /metr")  # ... and nothing more
        await writer.drain()
        started = asyncio.get_running_loop().time()
        answer = await asyncio.wait_for(reader.read(), 5)
        waited = asyncio.get_running_loop().time() - started
        writer.close()
        await writer.wait_closed()
        assert _status(answer) == 408
        assert LIMITS.read_timeout * 0.8 < waited < 3
        # a client that connects and says nothing at all is treated the same
        assert _status(await _exchange(server.port, b"")) == 408

    _serve(test)


def test_a_client_that_never_reads_is_dropped_after_the_write_timeout() -> None:
    big = b"x" * (32 << 20)

    async def test(server: HttpServer) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
        try:
            sock.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.sleep(LIMITS.write_timeout + 0.5)
            assert not server._clients  # given up, not waiting forever
            answer = await _exchange(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _status(answer) == 200
        finally:
            sock.close()

    async def main() -> None:
        server = HttpServer({"/metrics": _page, "/big": lambda h: (big, "text/plain")}, LIMITS)
        await server.start("127.0.0.1", 0)
        try:
            await test(server)
        finally:
            await server.close()

    asyncio.run(main())


def test_connections_beyond_the_limit_are_closed_and_close_drops_the_rest() -> None:
    async def test(server: HttpServer) -> None:
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
        await asyncio.sleep(0.05)
        with contextlib.suppress(ConnectionResetError):  # closed unanswered: EOF or reset
            answer = await _exchange(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert answer == b""
        await server.close()
        for reader, writer in idle:
            with contextlib.suppress(ConnectionResetError):  # dropped at close: EOF or reset
                assert await asyncio.wait_for(reader.read(), 2) == b""
            writer.close()
            with contextlib.suppress(ConnectionResetError):
                await writer.wait_closed()

    _serve(test)


def test_a_port_in_use_is_an_oserror_for_the_caller() -> None:
    async def main() -> None:
        first = HttpServer({"/metrics": _page})
        await first.start("127.0.0.1", 0)
        second = HttpServer({"/metrics": _page})
        try:
            with pytest.raises(OSError, match="address already in use"):
                await second.start("127.0.0.1", first.port)
        finally:
            await first.close()

    asyncio.run(main())


def test_parse_head() -> None:
    request = parse_head(b"\r\nGET /metrics?x=1 HTTP/1.1\r\nHost: h\r\nAccept:  a/b ;q=1 \r\n\r\n")
    assert (request.method, request.path, request.version) == ("GET", "/metrics", (1, 1))
    assert request.headers == {"host": "h", "accept": "a/b ;q=1"}
    with pytest.raises(RequestError, match="malformed request line"):
        parse_head(b"GET  /metrics HTTP/1.1\r\n\r\n")
    with pytest.raises(RequestError, match="empty request"):
        parse_head(b"\r\n\r\n")
