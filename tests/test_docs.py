"""The README and the guides in docs/ are valid reStructuredText: a broken table or link target
would otherwise show as raw markup on the package index and in the repository browser."""

from __future__ import annotations

from pathlib import Path

import docutils.core
import docutils.utils
import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPOSITORY / "README.rst", *sorted((REPOSITORY / "docs").glob("*.rst"))]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_document_is_valid_restructuredtext(document: Path) -> None:
    try:
        docutils.core.publish_string(
            document.read_text(),
            source_path=str(document),
            writer="null",
            settings_overrides={"report_level": 2, "halt_level": 2},
        )
    except docutils.utils.SystemMessage as problem:
        pytest.fail(f"{document.name}: {problem}")
