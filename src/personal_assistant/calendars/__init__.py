"""Calendar feeds: parse and plan (pure), subscriptions, the sandboxed fetch, the sync."""
