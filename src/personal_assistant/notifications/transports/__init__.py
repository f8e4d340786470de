"""Transports: how one notification reaches one channel."""
