"""Object keys: every user-supplied name stays inside its own key segment."""

import pytest

from ngshare_s3.exchange import keys

ODD_NAMES = ["..", ".", "a/b", "../../etc", "My Course+1", "é", "a\\b", "%2F", "a//b", " x ", "\x00"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_escaped_name_is_one_safe_segment(name):
    escaped = keys.escape(name)
    assert "/" not in escaped
    assert escaped not in {"", ".", ".."}
    assert escaped.isascii() and escaped.isprintable()


def test_distinct_names_get_distinct_keys():
    names = ["a/b", "a//b", "a%2Fb", "a\\b", "A/b"]
    assert len({keys.escape(n) for n in names}) == len(names)


def test_layout_reads_naturally_in_a_bucket():
    prefix = keys.submission_prefix("course 1", "ps1", "student1", "SUBID")
    assert prefix == "courses/course%201/assignments/ps1/submissions/student1/SUBID"
    assert keys.file_name(3, "notes/a.txt") == "0003/notes%2Fa.txt"


def test_new_ids_are_unique_and_sort_by_time():
    ids = [keys.new_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert [i.split("-")[0] for i in ids] == sorted(i.split("-")[0] for i in ids)
