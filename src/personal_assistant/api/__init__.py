"""The HTTP API (FastAPI, OpenAPI 3.1) on the application façade: the same operations as the
CLI, each scoped to the caller, who is named by a per-user API key (``Authorization: Bearer``).

* :mod:`.app`: ``create_app(settings)``, the routes, the middleware, the façade's lifetime.
* :mod:`.security`: the caller from the key; admins; secure headers; the request size limit;
  the per-key rate limit (:mod:`.ratelimit`).
* :mod:`.idempotency`: ``Idempotency-Key`` on creates: the first answer replayed.
* :mod:`.events`: server-sent events, and the end of every stream at shutdown.
* :mod:`.problems`: every error as one RFC 9457 ``application/problem+json`` shape.
* :mod:`.schemas`: what the routes take and answer.
* :mod:`.routes`: one module per resource.
"""
