"""The course every end-to-end story plays: course101's ps1, a one-cell notebook assignment with
two autograded tests, its people, their answers, and helpers to read what nbgrader produced."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat

COURSE = 'course101'
OTHER_COURSE = 'course202'
ASSIGNMENT = 'ps1'
NOTEBOOK = f'{ASSIGNMENT}.ipynb'
SOLUTION_CELL = 'square'

STUDENTS_CSV = [
    {'student_id': 'student1', 'first_name': 'Ada', 'last_name': 'Lovelace', 'email': 'ada@example.edu'},
    {'student_id': 'student2', 'first_name': 'Alan', 'last_name': 'Turing', 'email': 'alan@example.edu'},
]
INSTRUCTOR_NAMES = {'first_name': 'Grace', 'last_name': 'Hopper', 'email': 'grace@example.edu'}

# Answers to the one solution cell. The tests are worth 1 + 2 points: square(2) == 4 (1 point),
# square(3) == 9 and square(-4) == 16 (2 points).
CORRECT_ANSWER = 'def square(x):\n    return x * x\n'
WRONG_ANSWER = 'def square(x):\n    return 0\n'
PARTIAL_ANSWER = 'def square(x):\n    return x + x\n'  # right for 2 only
MAX_SCORE = 3.0
PARTIAL_SCORE = 1.0

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def nbgrader_cell(source: str, cell_type: str = 'code', **nbgrader) -> nbformat.NotebookNode:
    make = nbformat.v4.new_code_cell if cell_type == 'code' else nbformat.v4.new_markdown_cell
    cell = make(source)
    cell.metadata['nbgrader'] = {'schema_version': 3, **nbgrader}
    return cell


def ps1_source_notebook() -> nbformat.NotebookNode:
    """A small real assignment: one answer cell and two autograded test cells."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    notebook.cells = [
        nbformat.v4.new_markdown_cell('Write `square(x)`, which returns `x` times `x`.'),
        nbgrader_cell(
            'def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION\n',
            grade=False, solution=True, locked=False, grade_id=SOLUTION_CELL,
        ),
        nbgrader_cell(
            'assert square(2) == 4',
            grade=True, solution=False, locked=True, points=1, grade_id='test_square_of_two',
        ),
        nbgrader_cell(
            'assert square(3) == 9\nassert square(-4) == 16',
            grade=True, solution=False, locked=True, points=2, grade_id='test_square_of_others',
        ),
    ]
    return notebook


def write_ps1_source(instructor) -> None:
    """ps1's source notebook in the instructor's course directory, where generate_assignment
    looks for it."""
    source = instructor.home / 'source' / ASSIGNMENT / NOTEBOOK
    source.parent.mkdir(parents=True)
    nbformat.write(ps1_source_notebook(), source)


def solution_source(notebook: Path | bytes) -> str:
    """The answer cell's source, from a notebook file or a notebook's bytes."""
    if isinstance(notebook, Path):
        notebook = notebook.read_bytes()
    notebook = nbformat.reads(notebook.decode(), as_version=4)
    (cell,) = [c for c in notebook.cells if c.metadata.get('nbgrader', {}).get('grade_id') == SOLUTION_CELL]
    return cell.source


def answer_assignment(student, answer: str) -> None:
    """Edit the fetched notebook the way a student does in the notebook editor."""
    path = student.home / ASSIGNMENT / NOTEBOOK
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.metadata.get('nbgrader', {}).get('grade_id') == SOLUTION_CELL:
            cell.source = answer
    nbformat.write(notebook, path)


def cached_submissions(student) -> list[str]:
    """Timestamps of the student's submissions, from ngshare_exchange's local submission cache."""
    cache = student.home / '.local' / 'share' / 'jupyter' / 'nbgrader_cache' / COURSE
    prefix = f'{student.name}+{ASSIGNMENT}+'
    return sorted(p.name[len(prefix):] for p in cache.glob(prefix + '*')) if cache.is_dir() else []


# What the exchange plugins print when a call to the service did not succeed: ngshare_exchange
# logs these and may still exit 0; ngshare-s3-exchange exits non-zero with a CRITICAL line.
EXCHANGE_ERRORS = ('ngshare service returned', 'returned failure', 'An error occurred', '| CRITICAL]', 'Traceback')


def assert_succeeded(result) -> None:
    assert result.returncode == 0, str(result)
    for error in EXCHANGE_ERRORS:
        assert error not in result.output, str(result)


def submit(student, answer: str) -> str:
    """Answer, run `nbgrader submit`, and return the timestamp the service gave the submission."""
    before = set(cached_submissions(student))
    answer_assignment(student, answer)
    result = student.nbgrader('submit', ASSIGNMENT)
    assert_succeeded(result)
    (timestamp,) = set(cached_submissions(student)) - before
    assert f'Submitted as: {COURSE} {ASSIGNMENT} {timestamp}' in result.output
    return timestamp


def decoded(files: list[dict]) -> dict[str, bytes]:
    return {f['path']: base64.b64decode(f['content']) for f in files}


def feedback_score(html_path: Path) -> tuple[float, float]:
    """The notebook's total as nbgrader's feedback page states it: 'ps1 (Score: X / Y)'."""
    html = html_path.read_text()
    match = re.search(rf'<h4>{ASSIGNMENT} \(Score: ([\d.]+) / ([\d.]+)\)</h4>', html)
    assert match, f'no score heading in {html_path}'
    return float(match.group(1)), float(match.group(2))


def html_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob('*.html'))
