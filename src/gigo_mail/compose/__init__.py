"""Compose: an issue file becomes one compiled email (HTML and text with slot tokens), once per issue."""
