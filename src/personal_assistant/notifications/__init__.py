"""Notifications: what they say, when they may go, channels, the outbox and its delivery."""
