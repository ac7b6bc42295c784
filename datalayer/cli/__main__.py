"""``python -m datalayer.cli``: the ``datalayer`` command."""

from datalayer.cli.main import main

main()
