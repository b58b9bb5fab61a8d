"""``python -m api`` is the ``finvera`` command."""

from api.cli import main

main()
