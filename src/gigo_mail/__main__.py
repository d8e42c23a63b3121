"""`python -m gigo_mail` runs the command line."""

from gigo_mail.cli.app import main

main()
