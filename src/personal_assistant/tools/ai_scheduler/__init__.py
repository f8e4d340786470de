"""The AI task system: manager, scheduler, executor and notifications.

Import from the submodules (``ai_task_manager``, ``task_scheduler``, ``task_executor``,
``notification_service``); this package hands nothing on, so importing it stays cheap.
"""
