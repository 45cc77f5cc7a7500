"""`python -m posada` runs the CLI."""

from posada.cli import main

main()
