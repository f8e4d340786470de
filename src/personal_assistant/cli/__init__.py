"""The ``pa`` command line: a thin shell around ``AITaskManager`` and the schedule maths."""
