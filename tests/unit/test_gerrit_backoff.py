from __future__ import annotations

import pytest

from gatekeeper.gerrit.backoff import Backoff


def test_grows_exponentially_then_caps():
    b = Backoff(initial=1, factor=2, maximum=10, jitter=0)
    assert [b.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert b.delay(10_000) == 10  # no overflow


def test_jitter_only_shortens_within_bounds():
    b = Backoff(initial=4, factor=2, maximum=60, jitter=0.5)
    assert b.delay(1, rand=lambda: 0.0) == 4
    assert b.delay(1, rand=lambda: 0.999999) == pytest.approx(2, abs=1e-3)
    for _ in range(200):
        assert 2 <= b.delay(1) <= 4


def test_attempt_zero_is_immediate():
    assert Backoff().delay(0) == 0


@pytest.mark.parametrize("kw", [dict(initial=-1), dict(factor=0.5), dict(jitter=2), dict(maximum=-1)])
def test_invalid_settings_rejected(kw):
    with pytest.raises(ValueError):
        Backoff(**kw)
