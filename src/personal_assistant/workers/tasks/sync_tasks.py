"""Tasks of the ``sync_tasks`` queue (calendar sync arrives with issue 3; none yet)."""
