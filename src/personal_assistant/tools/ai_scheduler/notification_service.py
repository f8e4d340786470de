"""The contract's path to ``NotificationService``, which lives in ``notifications.delivery``."""

from personal_assistant.notifications.delivery import NotificationService

__all__ = ["NotificationService"]
