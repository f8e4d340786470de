"""The chat prompt for one run, built from the task, its owner and its recent results (pure)."""

from __future__ import annotations

import json

from personal_assistant.agents.base import AgentRequest

SYSTEM = (
    "You are a personal assistant running a scheduled task for {owner}. Answer with the "
    "result itself, concise and useful, in plain text. When previous results are given, say "
    "what changed since the last run."
)


def build_messages(request: AgentRequest) -> list[dict[str, str]]:
    lines = [
        f"Task: {request.title}",
        f"Type: {request.task_type}",
        f"Local time: {request.local_time:%Y-%m-%d %H:%M} ({request.timezone})",
    ]
    if request.instruction.strip():
        lines.append(f"Instruction: {request.instruction.strip()}")
    context = {k: v for k, v in request.ai_context.items() if not k.startswith("simulate_")}
    if context:
        lines.append("Context: " + json.dumps(context, ensure_ascii=False, sort_keys=True))
    for previous in request.previous_results:
        lines.append(
            f"Previous result ({previous.scheduled_for:%Y-%m-%d %H:%M} UTC): "
            f"{previous.result.strip()}"
        )
    return [
        {"role": "system", "content": SYSTEM.format(owner=request.owner_name)},
        {"role": "user", "content": "\n".join(lines)},
    ]
