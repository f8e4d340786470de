"""The channel key of the tests' own stacks (a test key: it protects nothing).

``stack_env`` gives it to the processes it starts (``CHANNEL_KEYS``); a test that stores a
channel itself seals its URL with :data:`CIPHER`, so those processes can open it.
"""

from __future__ import annotations

from personal_assistant.channel_keys import ChannelCipher

CHANNEL_KEY = "koL3fGFvXSDuAEEeeNCjlV0VRBupg9omxkvACYVujuA="
CIPHER = ChannelCipher([CHANNEL_KEY])
