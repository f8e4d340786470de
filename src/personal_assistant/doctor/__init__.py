"""``pa doctor``: validation of a running deployment, check by check.

Facts are read at the edges (the database, the broker, Celery's remote control, a canary run);
each check is a pure verdict over the facts it is given; a :class:`~.report.Report` holds the
verdicts and is rendered as a table, JSON, JUnit XML or a Markdown validation report.
"""
