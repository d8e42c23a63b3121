"""The command line as a whole: what starting it costs."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("premailer", "cssutils", "lxml", "mjml", "jinja2", "gigo_mail.compose.markdown", "frontmatter",
         "aiosmtplib", "flufl", "cryptography", "imaplib",
         "aiosmtpd", "email_validator", "asyncio", "wsgiref", "logging",
         "typer.rich_utils", "rich.markdown", "gigo_mail.compose.compile", "gigo_mail.send.engine")


def test_help_loads_no_compiler_engine_or_server() -> None:
    """`gigo-mail --help` and `status` need none of them; each command imports its own."""
    probe = ("import sys, contextlib, io\n"
             "from gigo_mail.cli.app import app\n"
             "sys.argv = ['gigo-mail', '--help']\n"
             "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
             "    app()\n"
             f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
