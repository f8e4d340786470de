"""Tasks of the ``file_tasks`` queue (exports and imports arrive with issue 3; none yet)."""
