"""Prometheus metrics: what is counted (``catalogue``), where (``record``, called by the
nouns), and how a process serves ``/metrics`` (``exposition``). Off until a process turns it
on (``METRICS_PORT``); see docs/howto-monitor.md."""
