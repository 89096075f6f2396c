"""Shared fixtures: paths to the tiny models, a clean output folder per test, golden files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

MODELS = Path(__file__).parent / "models"
ROOT = Path(__file__).parent.parent
GOLDEN_DIR = Path(__file__).parent / "golden"


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Session-scoped fixtures export before any test's own cache exists: they use this one,
    never the user's ~/.cache."""
    before = os.environ.get("EXPORTKIT_CACHE")
    os.environ["EXPORTKIT_CACHE"] = str(tmp_path_factory.mktemp("session-cache"))
    yield
    if before is None:
        os.environ.pop("EXPORTKIT_CACHE", None)
    else:
        os.environ["EXPORTKIT_CACHE"] = before


@pytest.fixture(autouse=True)
def private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test its own exportkit cache: a repeat inside a test may hit; nothing is shared
    between tests or written to the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("EXPORTKIT_CACHE", str(folder))
    return folder


@pytest.fixture
def models() -> Path:
    return MODELS


@pytest.fixture
def examples() -> Path:
    return ROOT / "examples"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/* from the current output instead of comparing",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """golden(name, text): compare text with tests/golden/<name> (or rewrite it)."""
    update = bool(request.config.getoption("--update-golden"))

    def check(name: str, text: str) -> None:
        path = GOLDEN_DIR / name
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"missing golden file {path}; run pytest --update-golden")
        assert text == path.read_text(encoding="utf-8"), f"output differs from {path}"

    return check


@pytest.fixture(scope="session")
def hf_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders holding tiny BERT/GPT-2/ViT config.json files, for `hf:` specs (no network)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from tests.models.hf_configs import write_configs

    return write_configs(tmp_path_factory.mktemp("hf"))
