"""Tasks: validation of what people give, the task rows, the manager (``AITaskManager``), quotas."""
