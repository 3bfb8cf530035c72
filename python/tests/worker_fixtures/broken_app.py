"""Fails at import, as a broken settings module would."""

x = 1
raise ImportError("this module is broken on purpose")
