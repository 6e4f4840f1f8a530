"""A student works in JupyterLab's Assignments panel (nbgrader's lab extension), in a real browser.

The course is set up as in test_exchange_client.py: course101 with instructor1 and student1
(through the API), ps1 generated and released from the instructor's command line. student1
then runs `jupyter lab` from the nbgrader 0.9 environment, with their own Hub user name, token
and home, and headless Chromium (driven by Selenium) opens nbgrader's Assignments panel: ps1
is listed as released, Fetch moves it to the downloaded assignments, Submit lists the
submission with its timestamp, which the exchange service reports too. Then the Hub goes down,
and refreshing the panel must show the plugin's error instead of a list that looks as if all
were well. Screenshots of each step are left in the test's tmp folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from . import client_envs
from .browser import browser_programs, headless_chromium
from .conftest import Classroom, make_classroom
from .course_story import ASSIGNMENT, COURSE, INSTRUCTOR_NAMES, NOTEBOOK, write_ps1_source
from .jupyter_server import JupyterServer
from .test_exchange_client import assert_succeeded, log_lines, write_client_config

pytestmark = pytest.mark.steps

PEOPLE = {'admin': COURSE, 'instructor1': COURSE, 'student1': COURSE}
STUDENT = 'student1'
STUDENT_NAMES = {'first_name': 'Ada', 'last_name': 'Lovelace', 'email': 'ada@example.edu'}
WAIT = 90  # seconds for JupyterLab, and each exchange call behind a click, on a busy machine
ENVIRONMENT = 'nbgrader-0.9'


def lab_program() -> Path:
    """jupyter-lab of the nbgrader 0.9 environment, or skip saying it is missing."""
    program = client_envs.programs(ENVIRONMENT) / 'jupyter-lab'
    if not program.is_file():
        reason = f'the Assignments panel test needs the {ENVIRONMENT} client environment ({program} is missing)'
        print(f'\nSKIPPED: {reason}')
        pytest.skip(reason)
    return program


@pytest.fixture(scope='module', autouse=True)
def programs_needed() -> tuple[str, str, Path]:
    """Checked before the Hub starts: chromium, chromedriver, selenium and the lab environment."""
    return (*browser_programs(), lab_program())


@pytest.fixture(scope='module')
def classroom(jupyterhub, tmp_path_factory) -> Classroom:
    programs = client_envs.programs(ENVIRONMENT)
    return make_classroom(
        jupyterhub, PEOPLE, tmp_path_factory.mktemp('homes'), write_client_config(jupyterhub.exchange_url), programs
    )


@pytest.fixture(scope='module')
def lab(programs_needed, classroom, tmp_path_factory):
    """student1's JupyterLab, started once the course exists."""
    log_path = tmp_path_factory.mktemp('lab') / 'jupyter-lab.log'
    server = JupyterServer.start(classroom[STUDENT], log_path, program='jupyter-lab')
    try:
        yield server
    finally:
        server.stop()


class AssignmentsPanel:
    """Chromium on the student's JupyterLab, with nbgrader's Assignments panel open."""

    def __init__(self, lab: JupyterServer, chromium: str, driver: str, screenshots: Path) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.browser = headless_chromium(chromium, driver)
        self.wait = WebDriverWait(self.browser, WAIT)
        self.lab = lab
        self.screenshots = screenshots

    def shot(self, name: str) -> None:
        self.browser.save_screenshot(str(self.screenshots / f'{name}.png'))

    def open(self) -> None:
        """Open JupyterLab, then Nbgrader > Assignment List from the menu bar, as a student does."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ready

        self.browser.get(f'{self.lab.url}/lab?token={self.lab.token}')
        menu = (By.XPATH, "//li[contains(@class,'lm-MenuBar-item')][.//*[normalize-space()='Nbgrader']]")
        self.wait.until(ready.element_to_be_clickable(menu)).click()
        item = (By.XPATH, "//li[contains(@class,'lm-Menu-item')][.//*[normalize-space()='Assignment List']]")
        self.wait.until(ready.element_to_be_clickable(item)).click()
        self.wait.until(ready.visibility_of_element_located((By.ID, 'released_assignments_list')))

    def rows(self, section: str) -> str:
        """XPath of the assignment rows of a list: released, fetched or submitted."""
        return f"//div[@id='{section}_assignments_list']/div[contains(@class,'list_item')]"

    def row(self, section: str, assignment_id: str):
        """The row of an assignment in a list, once it is shown there."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ready

        name = f".//span[contains(@class,'item_name')][normalize-space()='{assignment_id}']"
        locator = (By.XPATH, f'{self.rows(section)}[{name}]')
        return self.wait.until(ready.visibility_of_element_located(locator), f'{assignment_id} not in the {section} list')

    def click(self, section: str, assignment_id: str, button: str) -> None:
        from selenium.webdriver.common.by import By

        self.row(section, assignment_id).find_element(By.XPATH, f".//button[normalize-space()='{button}']").click()

    def submission_timestamps(self, assignment_id: str) -> list[str]:
        """The timestamps listed under a submitted assignment, once there is one."""
        from selenium.webdriver.common.by import By

        row = self.row('submitted', assignment_id)
        nested = ".//div[contains(@class,'nested_list_item')]//span[contains(@class,'item_name')]"
        self.wait.until(lambda _: row.find_elements(By.XPATH, nested), 'no submission listed')
        return [element.text.strip() for element in row.find_elements(By.XPATH, nested)]

    def refresh(self) -> None:
        from selenium.webdriver.common.by import By

        self.browser.find_element(By.ID, 'refresh_assignments_list').click()

    def error_text(self, section: str) -> str:
        """The error shown in place of a list, once one is shown."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ready

        locator = (By.ID, f'{section}_assignments_list_error')
        element = self.wait.until(ready.visibility_of_element_located(locator), f'no error shown for {section}')
        return element.text

    def visible_rows(self, section: str) -> list[str]:
        from selenium.webdriver.common.by import By

        return [row.text for row in self.browser.find_elements(By.XPATH, self.rows(section)) if row.is_displayed()]

    def course_button(self) -> str:
        from selenium.webdriver.common.by import By

        return self.browser.find_element(By.ID, 'course_list_default').text

    def close(self) -> None:
        self.browser.quit()


@pytest.fixture(scope='module')
def panel(programs_needed, lab, tmp_path_factory):
    chromium, driver, _ = programs_needed
    browser = AssignmentsPanel(lab, chromium, driver, tmp_path_factory.mktemp('screenshots'))
    try:
        yield browser
    finally:
        browser.close()


def test_1_instructor_releases_ps1_from_the_command_line(classroom):
    admin, instructor = classroom['admin'], classroom['instructor1']
    # The course and its people through the API (the CLI's course set-up has its own story test).
    admin.api_ok('POST', f'/course/{COURSE}', data={'instructors': json.dumps(['instructor1'])})
    admin.api_ok('POST', f'/instructor/{COURSE}/instructor1', data=INSTRUCTOR_NAMES)
    admin.api_ok('POST', f'/student/{COURSE}/{STUDENT}', data=STUDENT_NAMES)
    assert [s['username'] for s in admin.api_ok('GET', f'/students/{COURSE}')['students']] == [STUDENT]

    write_ps1_source(instructor)
    assert_succeeded(instructor.nbgrader('generate_assignment', ASSIGNMENT))
    result = instructor.nbgrader('release_assignment', ASSIGNMENT)
    assert_succeeded(result)
    assert f'Released as: {COURSE} {ASSIGNMENT}' in log_lines(result), str(result)
    classroom.facts['released notebook'] = (instructor.home / 'release' / ASSIGNMENT / NOTEBOOK).read_bytes()


def test_2_student_fetches_and_submits_in_the_assignments_panel(classroom, lab, panel):
    student = classroom[STUDENT]
    panel.open()
    panel.row('released', ASSIGNMENT)
    assert panel.course_button() == COURSE
    panel.shot('1-released')

    panel.click('released', ASSIGNMENT, 'Fetch')
    panel.row('fetched', ASSIGNMENT)
    panel.shot('2-downloaded')
    assert panel.visible_rows('released') == []
    assert (student.home / ASSIGNMENT / NOTEBOOK).read_bytes() == classroom.facts['released notebook']

    panel.click('fetched', ASSIGNMENT, 'Submit')
    (shown,) = panel.submission_timestamps(ASSIGNMENT)
    panel.shot('3-submitted')
    submissions = classroom['instructor1'].api_ok('GET', f'/submissions/{COURSE}/{ASSIGNMENT}')['submissions']
    assert [(s['student_id'], s['timestamp']) for s in submissions] == [(STUDENT, shown)]


def test_3_the_panel_says_so_when_the_exchange_cannot_be_reached(classroom, lab, panel, jupyterhub):
    # The Hub goes down, and with it the proxy the exchange is reached through.
    jupyterhub.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f'{jupyterhub.exchange_url}/healthz', timeout=5)

    panel.refresh()
    shown = panel.error_text('released')
    panel.shot('4-exchange-unreachable')
    print(f'\nThe Assignments panel shows, for released assignments:\n{shown}')
    # nbgrader shows the traceback; its last line is the plugin's message.
    last_line = shown.strip().splitlines()[-1]
    message = f'The exchange at {jupyterhub.exchange_url} cannot be reached (GET /assignments/{COURSE})'
    assert message in last_line, shown
    assert panel.course_button() == 'Error fetching courses!'
    for section in ('released', 'fetched', 'submitted'):
        assert panel.visible_rows(section) == [], f'the {section} list is still shown'
