"""utils/wording.py: counts as a person reads them."""

from __future__ import annotations

import pytest

from airflow_provider_mistral_batch.utils.wording import plural


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 requests"), (1, "1 request"), (2, "2 requests"), (1_200_000, "1,200,000 requests")],
)
def test_plural_says_one_request_and_many_requests(count: int, expected: str) -> None:
    assert plural(count, "request") == expected


def test_an_irregular_plural_is_given() -> None:
    assert plural(1, "entry", "entries") == "1 entry"
    assert plural(3, "entry", "entries") == "3 entries"
