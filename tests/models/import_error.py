"""Raises while importing, as a model file with a bug does."""

WIDTH = 4
raise RuntimeError("model file fails at import on purpose")
