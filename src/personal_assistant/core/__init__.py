"""The pure core: schedule maths, catch-up, run states and backoff. No I/O here."""
