"""Check: the preflight of an issue and its sending domain."""
