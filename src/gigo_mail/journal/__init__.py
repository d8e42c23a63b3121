"""Journal: the SQLite record of every delivery and run, the suppression list, the page's sync."""
