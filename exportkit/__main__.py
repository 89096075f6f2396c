"""``python -m exportkit``."""

from exportkit.cli import run

if __name__ == "__main__":  # `exportkit ci`'s spawned workers import this module too
    run()
