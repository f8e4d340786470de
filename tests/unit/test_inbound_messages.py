"""The envelope check the Redis channel applies to each item it pops (issue 10, item 8).

The integration tests (``tests/integration/test_poison_messages.py``) push the same items to a
real worker; these pin the rules: what kombu and Celery write passes unchanged, every hostile
item is refused with a fixed reason that names the field and quotes nothing of the item.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kombu.utils import json as kombu_json

from personal_assistant.config import Settings
from personal_assistant.errors import ValidationError
from personal_assistant.workers.celery_app import CONSUMER, celery_config
from personal_assistant.workers.inbound import check_envelope, fingerprint
from support.poison import SECRET, TRANSPORT, envelope

#: What Celery 5.7 / kombu 5.7 wrote to ``<prefix>ai_tasks`` for ``send_task(EXECUTE, [[1]])``.
CELERY_WROTE = (
    b'{"body": "W1tbMV1dLCB7fSwgeyJjYWxsYmFja3MiOiBudWxsLCAiZXJyYmFja3MiOiBudWxsLCAiY2hhaW4iOiBud'
    b'WxsLCAiY2hvcmQiOiBudWxsfV0=", "content-encoding": "utf-8", "content-type": "application/jso'
    b'n", "headers": {"lang": "py", "task": "personal_assistant.workers.tasks.ai_tasks.execute_ai_'
    b'task", "id": "b0ff2c9e-1e89-464c-bc7e-734a76069cf3", "shadow": null, "eta": null, "expires":'
    b' null, "group": null, "group_index": null, "retries": 0, "timelimit": [null, null], "root_id'
    b'": "b0ff2c9e-1e89-464c-bc7e-734a76069cf3", "parent_id": null, "argsrepr": "[[1]]", "kwargsr'
    b'epr": "{}", "origin": "gen12144@vm", "ignore_result": null, "replaced_task_nesting": 0, "st'
    b'amped_headers": null, "stamps": {}}, "properties": {"correlation_id": "b0ff2c9e-1e89-464c-b'
    b'c7e-734a76069cf3", "reply_to": "99c91c41-7c0f-3d53-bc89-c81d4df1104b", "delivery_mode": 2, '
    b'"delivery_info": {"exchange": "", "routing_key": "ai_tasks"}, "priority": 0, "body_encoding'
    b'": "base64", "delivery_tag": "d9090f3d-e687-4a9d-b676-6f04874f8455"}}'
)


@pytest.mark.parametrize("raw", [CELERY_WROTE, envelope(), envelope(None), envelope(b"")])
def test_what_kombu_writes_passes_unchanged(raw: bytes) -> None:
    assert check_envelope(raw) == kombu_json.loads(raw.decode())


@pytest.mark.parametrize("name", list(TRANSPORT))
def test_each_hostile_item_is_refused_naming_the_field_and_quoting_nothing(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_envelope(TRANSPORT[name])
    error = caught.value
    assert error.field
    assert SECRET not in str(error) and len(str(error)) < 100


def test_a_fingerprint_shows_size_and_hash_never_content() -> None:
    raw = f"password={SECRET}".encode()
    assert fingerprint(raw).startswith(f"bytes={len(raw)} sha256=")
    assert SECRET not in fingerprint(raw) and len(fingerprint(raw)) < 50


def test_workers_use_the_refusing_consumer_and_never_compress(tmp_path: Path) -> None:
    """``check_envelope`` refuses compressed bodies: nothing we send may be compressed."""
    config = celery_config(Settings(PA_HOME=str(tmp_path)))  # type: ignore[call-arg]
    assert config["worker_consumer"] == CONSUMER
    assert not any("compression" in key for key in config)
