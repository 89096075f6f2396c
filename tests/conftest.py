"""Shared fixtures: paths to the tiny models, a clean output folder per test."""

from __future__ import annotations

from pathlib import Path

import pytest

MODELS = Path(__file__).parent / "models"
ROOT = Path(__file__).parent.parent


@pytest.fixture
def models() -> Path:
    return MODELS


@pytest.fixture
def examples() -> Path:
    return ROOT / "examples"
