"""``python -m edge`` runs the ``santebus`` command line."""

from edge.cli import main

main()
