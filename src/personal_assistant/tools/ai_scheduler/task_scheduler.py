"""The contract's path to TaskScheduler: it lives in ``personal_assistant.runs.scheduler``."""

from personal_assistant.runs.scheduler import TaskScheduler

__all__ = ["TaskScheduler"]
