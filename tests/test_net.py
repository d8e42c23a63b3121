"""Loopback detection: what counts as this machine only."""

from __future__ import annotations

from gigo_mail.net import is_loopback


def test_only_loopback_counts_as_local() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.10", "example.org"))
