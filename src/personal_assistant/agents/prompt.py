"""The chat prompt for one run, built from the task, its owner and its recent results (pure).

The system message says who the assistant works for and how to answer; the user message carries
the task (title, type, instruction, ``ai_context`` without the ``simulate_*`` drill keys), the
owner's local time and, for tasks that run more than once, the recent results newest first, so
that the answer can say what changed since last time.
"""

from __future__ import annotations

import json

from personal_assistant.agents.base import AgentRequest, PreviousResult

SYSTEM = (
    "You are a personal assistant running a scheduled task for {owner}. Answer with the "
    "result itself, concise and useful, in plain text."
)
GUIDANCE = {
    "reminder": "Write the reminder itself: one or two friendly sentences for {owner}.",
}
DEFAULT_GUIDANCE = (
    "When previous results are given (newest first), say what changed since the last run."
)
RESULT_LIMIT = 1000  # characters of each previous result quoted in the prompt


def build_messages(request: AgentRequest) -> list[dict[str, str]]:
    """The chat messages for ``request``: one system message, one user message."""
    guidance = GUIDANCE.get(request.task_type, DEFAULT_GUIDANCE)
    system = SYSTEM + " " + guidance
    return [
        {"role": "system", "content": system.format(owner=request.owner_name)},
        {"role": "user", "content": "\n".join(_task_lines(request))},
    ]


def _task_lines(request: AgentRequest) -> list[str]:
    local = request.local_time
    lines = [
        f"Task: {request.title.strip()}",
        f"Type: {request.task_type}",
        f"Local time: {local:%Y-%m-%d %H:%M} ({request.timezone}), {local:%A}",
    ]
    if request.instruction.strip():
        lines.append(f"Instruction: {request.instruction.strip()}")
    context = {k: v for k, v in request.ai_context.items() if not k.startswith("simulate_")}
    if context:
        text = json.dumps(context, ensure_ascii=False, sort_keys=True, default=str)
        lines.append(f"Context: {text}")
    if not request.previous_results and request.task_type != "reminder":
        lines.append("Previous results: none, this is the first run.")
    newest_first = sorted(request.previous_results, key=lambda p: p.scheduled_for, reverse=True)
    lines.extend(_previous_line(previous) for previous in newest_first)
    return lines


def _previous_line(previous: PreviousResult) -> str:
    text = previous.result.strip() or "(empty)"
    if len(text) > RESULT_LIMIT:
        text = text[: RESULT_LIMIT - 1].rstrip() + "…"
    body = "\n  ".join(line.rstrip() for line in text.splitlines())
    return f"Previous result ({previous.scheduled_for:%Y-%m-%d %H:%M} UTC): {body}"
