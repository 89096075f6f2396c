"""``python -m exportkit``."""

from exportkit.cli import run

run()
