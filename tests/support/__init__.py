"""Test support: services, processes, waiting by condition."""
