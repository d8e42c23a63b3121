"""The commands: each parses its options, calls one core entry point and draws with rich."""
