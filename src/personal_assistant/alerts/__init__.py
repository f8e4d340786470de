"""Alerts without Prometheus: the conditions of ``deploy/prometheus/alerts.yml``, checked from
the database and the broker on ``maintenance_tasks``, told to the deployment's admins.

* :mod:`.rules` (pure): the rules, their thresholds, and which hold for a set of facts.
* :mod:`.lifecycle` (pure): an alert's episode, pending, open, resolved, and the cooldown.
* :mod:`.facts`: the runs' rates, read from ``task_runs``; the rest of the facts are the
  deployment's figures, put together with these by :mod:`personal_assistant.workers.alerting`.
* :mod:`.evaluate`: one evaluation, its episodes and the admins' notifications in one
  transaction.
* :mod:`.messages` (pure): what an admin is told.
* :mod:`.run`: the thresholds and timing the settings give.
"""
