"""The application façade: what the CLI (and later the HTTP API) calls; it owns the transactions."""
