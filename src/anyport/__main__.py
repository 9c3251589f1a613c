"""``python -m anyport`` is the ``anyport`` command."""

from anyport.cli import main

main()
