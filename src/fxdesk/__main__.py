"""`python -m fxdesk` runs the same command as `fxdesk`."""

from fxdesk.cli import main

main()
