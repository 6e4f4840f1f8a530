"""The deployment's topology on 127.0.0.1, and a course term that outlives a replica stopping.

What runs, as in a cluster where Zero to JupyterHub and the ngshare-s3 chart are installed:
- MongoDB (FerretDB) and S3 (MinIO), the session's servers;
- two ngshare_s3 replicas, separate processes configured only through the environment the
  chart's Deployment gives its container;
- one address in front of both (a TCP round-robin balancer standing in for the Service);
- a real JupyterHub and configurable-http-proxy whose services and roles are what z2jh makes of
  the documented values snippet k8s/z2jh-values.yaml (see z2jh.py), with the service's URL
  pointed at the balancer instead of the cluster's DNS name;
- users whose nbgrader, 0.9 with ngshare-s3-exchange as in the snippet's user image, reads the
  snippet's own nbgrader_config.py for user pods, naming the exchange behind the public proxy
  (`http://proxy-public/services/ngshare/` there).

The story: courses set up, an assignment released and fetched; while every student submits at
once, the replica that is receiving a submission gets SIGTERM. No nbgrader command may fail,
the request in flight must be answered, the replica must exit 0 within its grace period, and
the instructor then collects, grades and returns feedback through the survivor. Finally the
stopped replica starts again and takes over alone while the other one stops, as in a rolling
update, and students fetch their feedback from it.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from servers import S3Server

from . import chart
from . import client_envs
from . import course_story as course
from .conftest import (
    ADMIN_SERVICE,
    COMMAND_TIMEOUT,
    EXCHANGE_ADMIN,
    LOOPBACK,
    PROVISIONING_ROLE,
    REPO_ROOT,
    SERVICE_NAME,
    Classroom,
    HubAddresses,
    JupyterHub,
    free_loopback_port,
    jupyterhub_programs,
    make_classroom,
    start_jupyterhub,
    wait_until_serving,
    write_jupyterhub_config,
)
from .topology import Replica, RoundRobinBalancer, container_environment
from .z2jh import (
    HUB_SECRET,
    hub_secret,
    jupyterhub_load_roles,
    jupyterhub_services,
    load_values,
    merge_values,
    redirect_url,
)

pytestmark = pytest.mark.steps

Z2JH_VALUES = REPO_ROOT / 'k8s' / 'z2jh-values.yaml'
# The user image the snippet describes: nbgrader 0.9 with ngshare-s3-exchange.
USER_ENVIRONMENT = 'nbgrader-0.9'
# Where user pods reach the proxy: z2jh's public proxy Service.
PROXY_PUBLIC = 'http://proxy-public'

REPLICA_START_TIMEOUT = 90
STUDENTS = {
    'student1': course.CORRECT_ANSWER,
    'student2': course.PARTIAL_ANSWER,
    'student3': course.CORRECT_ANSWER,
    'student4': course.WRONG_ANSWER,
}
SCORES = {course.CORRECT_ANSWER: course.MAX_SCORE, course.PARTIAL_ANSWER: course.PARTIAL_SCORE, course.WRONG_ANSWER: 0.0}
PEOPLE = {EXCHANGE_ADMIN: course.COURSE, 'instructor1': course.COURSE, **{name: course.COURSE for name in STUDENTS}}
# Each student hands in a data file beside the notebook, large enough that the service is still
# working on an upload when the SIGTERM that the upload's arrival triggers reaches it.
DATA_FILE = 'measurements.bin'
DATA_SIZE = 6 * 1024 * 1024
SUBMISSION_REQUEST = f'POST /services/{SERVICE_NAME}/submission/'.encode()


# --------------------------------------------------------------------------------------------
# The deployment
# --------------------------------------------------------------------------------------------


def overlay_values(admin_token: str) -> dict:
    """What the test adds to the z2jh snippet, as a second values file would: the API-only
    service it creates users and tokens with, and that service's roles."""
    provisioning = {key: value for key, value in PROVISIONING_ROLE.items() if key != 'name'}
    inspection = {'scopes': ['read:services'], 'services': [ADMIN_SERVICE]}
    return {
        'hub': {
            'services': {ADMIN_SERVICE: {'api_token': admin_token}},
            'loadRoles': {PROVISIONING_ROLE['name']: provisioning, 'service-inspection': inspection},
        }
    }


def chart_values(database: str, location: str, s3: S3Server) -> dict:
    """The chart's values for MongoDB + S3 with the credentials given inline (the chart keeps
    them in its own Secret); everything else stays at the chart's defaults."""
    bucket, _, prefix = location.removeprefix('s3://').partition('/')
    return {
        'admins': [EXCHANGE_ADMIN],
        'mongodb': {'url': database},
        's3': {
            'bucket': bucket,
            'prefix': prefix,
            'endpoint': s3.endpoint_url,
            'region': s3.region,
            'accessKeyId': s3.access_key,
            'secretAccessKey': s3.secret_key,
        },
    }


def on_loopback(environment: dict[str, str], *, port: int, metrics_port: int, hub: HubAddresses) -> dict[str, str]:
    """The rendered container environment with what differs outside a pod: the replica listens
    on 127.0.0.1 and ports of its own instead of 0.0.0.0:8080/9090, and the Hub's API is at
    127.0.0.1 instead of the `hub` Service (the URL's path is kept). TMPDIR is replaced too
    (container_environment)."""
    for name in ('NGSHARE_S3_HOST', 'NGSHARE_S3_PORT', 'NGSHARE_S3_METRICS_PORT', 'JUPYTERHUB_API_URL', 'TMPDIR'):
        assert name in environment, f'the chart no longer sets {name}'
    return {
        **environment,
        'NGSHARE_S3_HOST': LOOPBACK,
        'NGSHARE_S3_PORT': str(port),
        'NGSHARE_S3_METRICS_PORT': str(metrics_port),
        'JUPYTERHUB_API_URL': redirect_url(environment['JUPYTERHUB_API_URL'], hub.hub_api_url),
    }


def user_configuration(values: dict, public_url: str) -> Callable[[Path, str], None]:
    """How each user's nbgrader is configured: the snippet's singleuser.extraFiles
    nbgrader_config.py (mounted at /etc/jupyter in user pods; here in ~/.jupyter, which nbgrader
    reads the same way) with proxy-public replaced by the Hub's public address, and a course
    folder config naming the user's course, as an instructor's course directory has."""
    files = values.get('singleuser', {}).get('extraFiles', {})
    (text,) = [f['stringData'] for f in files.values() if f.get('mountPath', '').endswith('/nbgrader_config.py')]
    assert f'{PROXY_PUBLIC}/services/{SERVICE_NAME}' in text, text
    text = text.replace(PROXY_PUBLIC, public_url)

    def configure(home: Path, course_id: str) -> None:
        (home / '.jupyter').mkdir()
        (home / '.jupyter' / 'nbgrader_config.py').write_text(text)
        (home / 'nbgrader_config.py').write_text(f'c = get_config()\nc.CourseDirectory.course_id = {course_id!r}\n')

    return configure


@dataclass
class Deployment:
    hub: JupyterHub
    balancer: RoundRobinBalancer
    replicas: list[Replica]
    values: dict
    services: list[dict]
    grace_period: float
    facts: dict = field(default_factory=dict)

    def failure_sections(self) -> list[tuple[str, str]]:
        """Shown with a failed step: each replica's log and what the balancer saw."""
        sections = [(f'{r.name} log', r.log()) for r in self.replicas]
        summary = [f'connections per replica: {self.balancer.served()}, refused: {self.balancer.refused}']
        for connection in self.balancer.connections()[-40:]:
            summary.append(
                f'replica {connection.backend}: requests {[(round(t, 3), line) for t, line in connection.requests]} '
                f'responses {[(round(t, 3), line) for t, line in connection.responses]}'
            )
        sections.append(('balancer', '\n'.join(summary)))
        return sections


@pytest.fixture(scope='module')
def deployment(tmp_path_factory, mongodb, minio_server):
    hub_program, proxy_program = jupyterhub_programs()
    folder = tmp_path_factory.mktemp('deployment')
    addresses = HubAddresses.pick()
    admin_token = secrets.token_hex(32)

    # JupyterHub's services and roles, as z2jh makes them from the snippet (plus the test's own).
    values = merge_values(load_values(Z2JH_VALUES), overlay_values(admin_token))
    hub_secret_data = hub_secret(values)
    services = jupyterhub_services(values, hub_secret_data)
    load_roles = jupyterhub_load_roles(values)

    # The replicas, as the chart's Deployment runs them; z2jh's Secret `hub` is in the namespace.
    rendered = chart.render(
        chart_values(mongodb.new_database_url(), minio_server.new_location(), minio_server), folder
    )
    environment = rendered.environment({HUB_SECRET: hub_secret_data})
    replicas = []
    for index in range(rendered.replicas):
        replica_folder = folder / f'replica-{index}'
        replica_folder.mkdir()
        port = free_loopback_port()
        local = on_loopback(environment, port=port, metrics_port=free_loopback_port(), hub=addresses)
        replicas.append(
            Replica(f'replica-{index}', port, container_environment(replica_folder, local), replica_folder,
                    rendered.probe_path('readinessProbe'))
        )

    balancer = RoundRobinBalancer([replica.port for replica in replicas])
    hub = None
    try:
        balancer.start()
        (service,) = [s for s in services if s['name'] == SERVICE_NAME]
        service['url'] = redirect_url(service['url'], balancer.url)
        for replica in replicas:
            replica.start(REPLICA_START_TIMEOUT)
        config = write_jupyterhub_config(folder, addresses, proxy_program, services, load_roles)
        hub = start_jupyterhub(hub_program, proxy_program, folder, config, addresses.public_url, admin_token)
        wait_until_serving(hub)
        yield Deployment(
            hub, balancer, replicas, values, services, float(environment['NGSHARE_S3_GRACE_PERIOD']),
            {'rendered': rendered},
        )
    finally:
        if hub is not None:
            hub.stop()
        for replica in replicas:
            replica.stop()
        balancer.stop()


@pytest.fixture(scope='module')
def classroom(deployment, tmp_path_factory) -> Classroom:
    configure = user_configuration(deployment.values, deployment.hub.public_url)
    return make_classroom(
        deployment.hub, PEOPLE, tmp_path_factory.mktemp('homes'), configure, client_envs.programs(USER_ENVIRONMENT)
    )


def server_errors(deployment: Deployment, since: float = 0.0) -> list[tuple[int, bytes]]:
    """Responses with a 5xx status that any replica sent since `since`."""
    return [
        (backend, line)
        for backend, answers in enumerate(deployment.balancer.answered(since))
        for _, line in answers
        if re.match(rb'HTTP/1\.[01] 5\d\d', line)
    ]


def request_started(connection) -> float:
    return max(t for t, line in connection.requests if SUBMISSION_REQUEST in line)


def stop_replica(replica: Replica, grace_period: float) -> tuple[float, int]:
    """SIGTERM, then (seconds until exit, exit code)."""
    sent = replica.terminate()
    code = replica.wait(timeout=grace_period + 30)
    return time.monotonic() - sent, code


# --------------------------------------------------------------------------------------------
# The story
# --------------------------------------------------------------------------------------------


def test_1_hub_and_replicas_are_configured_as_z2jh_and_the_chart_configure_them(deployment, classroom):
    # The snippet's service URL names the chart's Service and its http port; the balancer
    # stands in for that Service.
    (service,) = [s for s in deployment.services if s['name'] == SERVICE_NAME]
    documented = urlsplit(deployment.values['hub']['services'][SERVICE_NAME]['url'])
    rendered_service = deployment.facts['rendered'].one('Service')
    (http,) = [port for port in rendered_service['spec']['ports'] if port['name'] == 'http']
    assert (documented.hostname, documented.port) == (rendered_service['metadata']['name'], http['port'])
    assert service['url'].startswith(deployment.balancer.url)

    # The Hub knows the service under its key, at that address, with the token the replicas
    # read from z2jh's Secret.
    response = deployment.hub.hub_api('GET', f'/services/{SERVICE_NAME}')
    assert response.status_code == 200, response.text
    described = response.json()
    assert (described['name'], described['prefix'], described['url']) == (SERVICE_NAME, f'/services/{SERVICE_NAME}/', service['url'])
    assert described['display'] is True
    for replica in deployment.replicas:
        identity = requests.get(
            f'{deployment.hub.public_url}/hub/api/user',
            headers={'Authorization': f'token {replica.environment["JUPYTERHUB_API_TOKEN"]}'},
            timeout=30,
        )
        assert identity.status_code == 200 and identity.json()['name'] == SERVICE_NAME, identity.text
        assert replica.environment['JUPYTERHUB_SERVICE_PREFIX'] == described['prefix']

    # The exchange answers through the public proxy, where users' nbgrader looks for it.
    health = requests.get(f'{deployment.hub.exchange_url}/healthz', timeout=30)
    assert health.status_code == 200 and health.json()['success'] is True, health.text


def test_2_admin_sets_up_the_course(classroom):
    admin = classroom[EXCHANGE_ADMIN]
    result = admin.course_management('create_course', course.COURSE, 'instructor1')
    assert result.returncode == 0 and f'Successfully created {course.COURSE}' in result.output, str(result)

    roster = admin.home / 'students.csv'
    roster.write_text(
        'student_id,first_name,last_name,email\n'
        + ''.join(f'{name},First {name},Last {name},{name}@example.edu\n' for name in STUDENTS)
    )
    result = admin.course_management('add_students', course.COURSE, str(roster), '--no-gb')
    assert result.returncode == 0, str(result)
    for name in STUDENTS:
        assert f'{name} was successfully added to {course.COURSE}' in result.output, str(result)
    students = admin.api_ok('GET', f'/students/{course.COURSE}')['students']
    assert sorted(s['username'] for s in students) == sorted(STUDENTS)


def test_3_instructor_releases_and_students_fetch(classroom):
    instructor = classroom['instructor1']
    course.write_ps1_source(instructor)
    course.assert_succeeded(instructor.nbgrader('generate_assignment', course.ASSIGNMENT))
    result = instructor.nbgrader('release_assignment', course.ASSIGNMENT)
    course.assert_succeeded(result)
    assert f'Released as: {course.COURSE} {course.ASSIGNMENT}' in result.output, str(result)
    released = (instructor.home / 'release' / course.ASSIGNMENT / course.NOTEBOOK).read_bytes()

    for name in STUDENTS:
        student = classroom[name]
        course.assert_succeeded(student.nbgrader('fetch_assignment', course.ASSIGNMENT))
        assert (student.home / course.ASSIGNMENT / course.NOTEBOOK).read_bytes() == released


def test_4_submissions_outlive_a_replica_stopping(deployment, classroom):
    balancer, facts = deployment.balancer, deployment.facts
    data = {}
    for name in STUDENTS:
        data[name] = os.urandom(DATA_SIZE)
        (classroom[name].home / course.ASSIGNMENT / DATA_FILE).write_bytes(data[name])
    facts['data sha256'] = {name: hashlib.sha256(body).hexdigest() for name, body in data.items()}

    stopped: dict = {}

    def stop_the_receiving_replica(connection) -> None:
        # Runs on the balancer's thread right after a submission's body reached a replica.
        stopped['replica'] = deployment.replicas[connection.backend]
        stopped['at'] = stopped['replica'].terminate()

    started = time.monotonic()
    watch = balancer.watch(SUBMISSION_REQUEST, stop_the_receiving_replica)
    with ThreadPoolExecutor(len(STUDENTS)) as pool:
        submissions = {name: pool.submit(course.submit, classroom[name], answer) for name, answer in STUDENTS.items()}
        connection = watch.wait(timeout=COMMAND_TIMEOUT)
        replica, sigterm_at = stopped['replica'], stopped['at']
        exit_code = replica.wait(timeout=deployment.grace_period + 30)
        exit_seconds = time.monotonic() - sigterm_at
        timestamps = {name: future.result(timeout=COMMAND_TIMEOUT) for name, future in submissions.items()}
    survivor = next(r for r in deployment.replicas if r is not replica)
    print(
        f'\n{replica.name} got SIGTERM {sigterm_at - request_started(connection):.3f} s after a submission began '
        f'arriving; exited {exit_code} after {exit_seconds:.2f} s. Connections per replica: {balancer.served()}, '
        f'refused: {balancer.refused}'
    )
    facts.update(timestamps=timestamps, stopped=replica, survivor=survivor, exited_at=sigterm_at + exit_seconds)

    # The replica finished what it was doing and left cleanly, within its grace period.
    assert exit_code == 0, f'{replica.name} exited with {exit_code}\n{replica.log()}'
    assert exit_seconds < deployment.grace_period, f'{replica.name} took {exit_seconds:.1f} s to exit after SIGTERM'

    # The submission in flight at the SIGTERM was answered, successfully, after it.
    began = request_started(connection)
    assert began < sigterm_at
    answers = [(t, line) for t, line in connection.responses if t > began]
    assert answers, f'the submission in flight on {replica.name} got no answer'
    assert answers[0][0] > sigterm_at and answers[0][1].startswith((b'HTTP/1.1 200', b'HTTP/1.0 200')), answers

    # Every student's submission was stored, once, with the time the client was told.
    instructor = classroom['instructor1']
    listed = instructor.api_ok('GET', f'/submissions/{course.COURSE}/{course.ASSIGNMENT}')['submissions']
    assert sorted((s['student_id'], s['timestamp']) for s in listed) == sorted(timestamps.items())

    # Both replicas served, and no replica answered with a server error.
    answered = balancer.answered(started)
    assert all(answered), f'responses per replica during the submissions: {[len(a) for a in answered]}'
    assert server_errors(deployment) == []


def test_5_instructor_collects_grades_and_returns_feedback_through_the_survivor(deployment, classroom):
    facts = deployment.facts
    instructor = classroom['instructor1']
    survivor_index = deployment.replicas.index(facts['survivor'])
    stopped_index = deployment.replicas.index(facts['stopped'])

    course.assert_succeeded(instructor.nbgrader('collect', course.ASSIGNMENT))
    submitted = instructor.home / 'submitted'
    assert sorted(p.name for p in submitted.iterdir()) == sorted(STUDENTS)
    for name, answer in STUDENTS.items():
        folder = submitted / name / course.ASSIGNMENT
        assert (folder / 'timestamp.txt').read_text() == facts['timestamps'][name]
        assert course.solution_source(folder / course.NOTEBOOK) == answer
        assert hashlib.sha256((folder / DATA_FILE).read_bytes()).hexdigest() == facts['data sha256'][name], name

    for step in ('autograde', 'generate_feedback', 'release_feedback'):
        course.assert_succeeded(instructor.nbgrader(step, course.ASSIGNMENT))
    for name in STUDENTS:
        feedback = instructor.api_ok(
            'GET', f'/feedback/{course.COURSE}/{course.ASSIGNMENT}/{name}', params={'timestamp': facts['timestamps'][name]}
        )
        html = instructor.home / 'feedback' / name / course.ASSIGNMENT / f'{course.ASSIGNMENT}.html'
        assert course.decoded(feedback['files']) == {f'{course.ASSIGNMENT}.html': html.read_bytes()}

    answered = deployment.balancer.answered(facts['exited_at'])
    assert answered[stopped_index] == []
    assert len(answered[survivor_index]) > 0
    assert server_errors(deployment) == []


def test_6_a_restarted_replica_takes_over_while_the_other_stops(deployment, classroom):
    facts = deployment.facts
    replica, survivor = facts['stopped'], facts['survivor']
    index = deployment.replicas.index(replica)

    replica.start(REPLICA_START_TIMEOUT)
    seconds, code = stop_replica(survivor, deployment.grace_period)
    assert code == 0 and seconds < deployment.grace_period, f'{survivor.name}: exit {code} after {seconds:.1f} s\n{survivor.log()}'
    alone_since = time.monotonic()

    for name, answer in STUDENTS.items():
        student = classroom[name]
        course.assert_succeeded(student.nbgrader('fetch_feedback', course.ASSIGNMENT))
        html = student.home / course.ASSIGNMENT / 'feedback' / facts['timestamps'][name] / f'{course.ASSIGNMENT}.html'
        assert course.feedback_score(html) == (SCORES[answer], course.MAX_SCORE), name

    answered = deployment.balancer.answered(alone_since)
    assert len(answered[index]) >= len(STUDENTS), f'responses per replica: {[len(a) for a in answered]}'
    assert sum(len(a) for a in answered) == len(answered[index])
    assert server_errors(deployment) == []
    # The probes and the metrics port the chart sets up answer on the replica that took over.
    rendered = facts['rendered']
    for probe in ('livenessProbe', 'readinessProbe'):
        answer = requests.get(replica.url(rendered.probe_path(probe)), timeout=30)
        assert answer.status_code == 200, f'{probe}: {answer.status_code} {answer.text[:300]}'
    metrics = requests.get(f'http://{LOOPBACK}:{replica.environment["NGSHARE_S3_METRICS_PORT"]}/metrics', timeout=30)
    assert metrics.status_code == 200 and metrics.headers['Content-Type'].startswith('text/plain'), metrics.text[:300]
