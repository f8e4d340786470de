"""The contract's path to AITaskManager: it lives in ``personal_assistant.tasks.manager``."""

from personal_assistant.tasks.manager import AITaskManager

__all__ = ["AITaskManager"]
