"""Rendering: results -> text, JSON, Markdown, JUnit (pure functions returning str)."""
