"""The daemon's health endpoints (issue #9): Prometheus metrics and the status socket.

``snapshot`` reads the running daemon (on its event loop, at request time), ``metrics`` turns
that into the Prometheus exposition (the one module that imports prometheus_client),
``http`` serves it on localhost, ``status`` serves the JSON snapshot on a unix socket for
``santebus status`` and reads it back for the CLI, ``endpoints`` runs both as one daemon task;
``serve`` is how both answer a connection.
Nothing here starts a thread: the outbox's sqlite connections and the asyncio state are only
touched from the loop thread.

This package module imports nothing, so that ``santebus status`` (which needs only
:mod:`edge.health.status` and its standard-library helper :mod:`edge.health.serve`) starts
without the daemon's dependencies.
"""
