"""``santebus run`` without the CLI: what the command line adds to the daemon's memory.

Does what the ``run`` command does - load the config with its overrides, set up the logs, run
:class:`edge.app.Daemon` - importing nothing else, for benchmarks/footprint.py to compare. The
CLI once imported every operator command at start (matplotlib, rich, the analyses): 35 MB of
the daemon's 113 MB; it now imports them when invoked, and this control shows what is left.

Usage: ``python -m benchmarks.lean_daemon CONFIG [KEY.PATH=VALUE ...]``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from edge import logs
from edge.app import Daemon
from edge.config_loader import load_config


def main(argv: list[str]) -> int:
    config = load_config(Path(argv[0]), argv[1:])
    logs.setup(config.gateway.log_level)
    return asyncio.run(Daemon(config).run())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
