import pytest

from gatekeeper.core.manager import PipelineManager
from tests.unit.core.harness import Harness
from tests.unit.core.layouts import layout


@pytest.fixture
def h() -> Harness:
    return Harness(layout())


@pytest.fixture
def make():
    def _make(**kw) -> Harness:
        return Harness(layout(**kw))
    return _make


@pytest.fixture(autouse=True)
def _check_chains(monkeypatch):
    """Every chain the managers extend is checked against walking it."""
    monkeypatch.setattr(PipelineManager, "check_chains", True)
