import pytest

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
