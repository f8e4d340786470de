"""Tools the assistant uses; ``ai_scheduler`` is the AI task system."""
