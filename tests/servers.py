"""Real servers for tests, each on 127.0.0.1 and a free port, stopped afterwards.

* ``running_page(config, limits)``: the one-click unsubscribe page under waitress.
* ``Postfix`` and ``Dovecot``: private instances configured in a tmp folder (see their docs);
  ``require(binary)`` skips a test only when the server is not installed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gigo_mail.config import Config
from gigo_mail.unsubscribe_web import DEFAULT_LIMITS, ServeLimits, make_server


@contextmanager
def running_page(config: Config, limits: ServeLimits = DEFAULT_LIMITS) -> Iterator[str]:
    """The page served by waitress in a thread; yields its base URL (http://127.0.0.1:PORT)."""
    server: Any = make_server(config, "127.0.0.1", 0, limits)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=5)
