"""`python -m gigo_mail` runs the command line."""

from .cli import main

main()
