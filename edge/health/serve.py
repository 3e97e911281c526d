"""What both health servers do with a connection: write one answer, close, or drop it.

The HTTP server (edge/health/http.py) and the status socket (edge/health/status.py) each
answer once per connection and close. :class:`Connections` keeps the connections being
answered, so that a server's ``close`` can abort the ones still open, and runs one: the
answer is written within the write timeout, then the writer closed (waiting a second at most);
a connection not answered in full (the client went away, too slow a reader, a failure) is
aborted instead. A client's error is logged at debug level, not the daemon's concern.

Standard library only, like edge/health/status.py (the CLI imports that one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


class Connections:
    """The connections a stream server is answering, each with its writer."""

    def __init__(self) -> None:
        self._writers: dict[asyncio.Task[object], asyncio.StreamWriter] = {}

    def __len__(self) -> int:
        return len(self._writers)

    async def drop(self) -> None:
        """Abort the connections still open and wait (2 s at most) for their tasks to end."""
        # Abort, not cancel: a cancelled connection task is logged as an error by asyncio's
        # streams (3.11); an aborted connection ends its task through its normal error path.
        for writer in list(self._writers.values()):
            writer.transport.abort()
        if self._writers:
            await asyncio.wait(list(self._writers), timeout=2.0)

    async def serve(
        self,
        writer: asyncio.StreamWriter,
        answer: Callable[[], Awaitable[bytes | None]],
        *,
        write_timeout: float,
        log: logging.Logger,
        dropped: str,
        failed: str | None = None,
    ) -> None:
        """Write what ``answer()`` returns (None: nothing, abort) on ``writer``, then close it.

        ``dropped`` is the format of the debug message for a client's error (its one argument:
        the error's text); with ``failed``, any other exception is logged with that message
        instead of raised.
        """
        task = asyncio.current_task()
        assert task is not None
        self._writers[task] = writer
        flushed = False
        try:
            data = await answer()
            if data is not None:
                writer.write(data)
                async with asyncio.timeout(write_timeout):
                    await writer.drain()
                flushed = True
        except (OSError, TimeoutError) as exc:  # the client's problem, not the daemon's
            log.debug(dropped, str(exc))
        except Exception:
            if failed is None:
                raise
            log.exception(failed)
        finally:
            self._writers.pop(task, None)
            if flushed:
                writer.close()
                with contextlib.suppress(OSError, TimeoutError):
                    async with asyncio.timeout(1.0):
                        await writer.wait_closed()
            else:
                writer.transport.abort()
