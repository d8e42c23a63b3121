"""Web: the servers and pages: preview, the static site, the capture inbox, the public page."""
