"""The ``pa`` command line: a thin shell around the façade (``personal_assistant.app``)."""
