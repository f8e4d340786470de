"""API keys: how a caller of the HTTP API says who they are (``Authorization: Bearer <key>``).

* :mod:`.tokens` (pure): a key's shape (``pa_<id>_<secret>``), making one, parsing one, and its
  hash.
* :mod:`.store`: the ``api_keys`` rows: create, list, revoke, and authenticate a key.
* :mod:`.idempotency`: the ``idempotency_keys`` rows: a caller's key claimed with a hash of its
  request, the first answer kept 24 h.

A key is shown once, when it is made; only its public id (the prefix) and a hash of it are
stored.
"""
