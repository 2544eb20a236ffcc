"""``python -m pacsbridge``: the same as the ``pacsbridge`` command."""

from pacsbridge.cli import main

main()
