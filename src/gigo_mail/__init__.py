"""gigo-mail: Markdown newsletters compiled to responsive email and sent over SMTP."""

__version__ = "0.1.0"
