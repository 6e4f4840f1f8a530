"""Timestamps as ngshare emits and accepts them (spec §1.8)."""

import re

import pytest

from ngshare_s3.exchange import timestamps

CANONICAL = "2020-01-01 00:00:00.000000"


def test_now_has_the_emitted_format():
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", timestamps.now())


@pytest.mark.parametrize(
    "text",
    [CANONICAL, CANONICAL + " UTC", CANONICAL + " utc", CANONICAL + "  GMT", "2020-1-1 0:0:0.0", "2020-01-01   00:00:00.0"],
)
def test_accepted_forms_parse_to_the_canonical_one(text):
    assert timestamps.parse_timestamp(text) == CANONICAL


@pytest.mark.parametrize(
    "text", ["a", "", "2020-01-01 00:00:00", "2020-01-01T00:00:00.000000", CANONICAL + " +00:00",
             "2020-01-01 00:00:00.0000000"],
)
def test_rejected_forms(text):
    assert timestamps.parse_timestamp(text) is None


def test_later_is_one_microsecond_after_across_a_second_boundary():
    assert timestamps.later("2020-01-01 00:00:59.999999") == "2020-01-01 00:01:00.000000"
