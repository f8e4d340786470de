"""What a notification says (pure): the task title, the answer or the honest reason, trimmed.

:func:`compose` builds the outbox row (what ``pa notifications`` shows). :func:`render` builds
what one channel sends: the same title and text, trimmed to the channel kind's limit at a word
boundary with a pointer to the full text (``pa runs --task N`` and the run id, or ``pa runs``
for a message of no run, such as a daily digest). SMS has no title: it is folded into the text
(``Title: text``).
"""

from __future__ import annotations

from personal_assistant.notifications.transports.base import Message

TITLE_LIMIT = 200
BODY_LIMIT = 4000

#: Characters of body per channel kind (the title is separate except for SMS).
KIND_LIMITS: dict[str, int] = {"email": 20_000, "webhook": 20_000, "chat": 2000, "sms": 160}


def idempotency_key(notification_id: int) -> str:
    return f"pa-notification-{notification_id}"


def compose(task_title: str, *, succeeded: bool, text: str) -> Message:
    """The notification for a finished run (pure): the answer, or the honest reason."""
    title = task_title if succeeded else f"Failed: {task_title}"
    body = text if succeeded else f"The task could not be completed: {text}"
    return Message(trim(title, TITLE_LIMIT), trim(body, BODY_LIMIT))


def render(
    kind: str, title: str, text: str, *, task_id: int | None = None, run_id: int | None = None
) -> Message:
    """The message for one channel kind; a text too long ends with where to read the rest.

    The pointer names the task and the run when the message has them (``pa runs --task N,
    run M``); a message of no run (a daily digest) points to ``pa runs``.
    """
    limit = KIND_LIMITS.get(kind, BODY_LIMIT)
    title = trim(" ".join(title.split()), TITLE_LIMIT)
    if kind == "sms":
        text = f"{title}: {text}" if title else text
        title = ""
    text = text.strip()
    if len(text) <= limit:
        return Message(title, text)
    where = "pa runs" if task_id is None else f"pa runs --task {task_id}"
    if run_id is not None:
        where += f", run {run_id}"
    pointer = f" (more: {where})"
    return Message(title, trim(text, max(limit - len(pointer), 1)) + pointer)


def trim(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a word boundary, ending with ``…``."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"
