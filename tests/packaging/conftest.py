"""Figures the packaging tests measure (bundle size, start-up times), printed in a section
of the test summary so they show in every CI log, captured output or not."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.packaging.frozen import FrozenApp, frozen_app_for_tests

_FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture
def report(pytestconfig: pytest.Config) -> Callable[[str], None]:
    """Record one line for the "packaging figures" summary section."""
    return pytestconfig.stash.setdefault(_FIGURES, []).append


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    figures = config.stash.get(_FIGURES, [])
    if figures:
        terminalreporter.section("packaging figures")
        for line in figures:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def frozen_app(tmp_path_factory: pytest.TempPathFactory) -> FrozenApp:
    """One PyInstaller build for the whole run (minutes on a small machine)."""
    return frozen_app_for_tests(tmp_path_factory.mktemp("pyinstaller"))
