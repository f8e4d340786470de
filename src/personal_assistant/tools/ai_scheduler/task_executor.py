"""The contract's path to TaskExecutor: it lives in ``personal_assistant.runs.executor``."""

from personal_assistant.runs.executor import TaskExecutor

__all__ = ["TaskExecutor"]
