"""Send: one run set up, planned, and carried out: messages, DKIM, the engine and its outcomes."""
