"""An auditor reads a student's submission in MinIO's console (object browser), in a real browser.

A student submits through ngshare_s3's API (MongoDB on FerretDB, files on a MinIO of this test's
own with its console on 127.0.0.1); `ngshare-s3 auditor create` makes the read-only account;
headless Chromium, driven by Selenium, logs into the console as that account, opens the
student's submission folder and the file's details. The same account's uploads and deletes are
refused through the S3 API, and another bucket is not in the console's bucket list.
Screenshots of what the auditor saw are left in the test's tmp folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import types
from pathlib import Path
from urllib.parse import quote, unquote

import aiohttp
import botocore.exceptions
import pytest

import servers
from api.processes import base_url, start_server, stop, wait_until_healthy
from api.support import ADMIN, INSTRUCTOR, PREFIX, STUDENT, Api, FakeHub
from servers import S3Server

from .browser import browser_programs, headless_chromium

COURSE, ASSIGNMENT = "c1", "a1"
FILE_NAME = "answers.ipynb"
CONTENT = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
EXCHANGE_PREFIX = "ngshare"
AUDITOR, AUDITOR_PASSWORD = "auditor", "audit-console-password"
WAIT = 60  # seconds for the console's pages to render on a busy machine
METADATA_KEYS = ("kind", "course", "assignment", "student", "path", "timestamp", "uploader", "md5")


@pytest.fixture
def console_minio(tmp_path: Path):
    """A MinIO with its console; yields (S3Server, console URL)."""
    try:
        process = servers.start_minio(tmp_path / "minio", console_port=servers.free_port())
    except servers.ServerUnavailable as reason:
        pytest.skip(str(reason))
    console = process.command(process.port)[-1]
    server = S3Server("minio", f"http://127.0.0.1:{process.port}", servers.MINIO_USER, servers.MINIO_PASSWORD,
                      process=process)
    try:
        yield server, f"http://{console}"
    finally:
        process.stop()


@pytest.fixture
async def fake_hub(aiohttp_server):
    """The Hub's token check on loopback (the API suite's stand-in)."""
    hub = FakeHub()
    served = await aiohttp_server(hub.make_app())
    hub.url = str(served.make_url("")).rstrip("/")
    return hub


async def submit_through_the_api(server: S3Server, mongodb_url: str, fake_hub: FakeHub, folder: Path) -> str:
    """Course, student, release and one submission, as nbgrader's exchange client sends them;
    returns the submission's timestamp."""
    port = servers.free_port()
    with open(folder / "ngshare.log", "wb") as log:
        process = start_server((mongodb_url, f"s3://{server.bucket}/{EXCHANGE_PREFIX}"), fake_hub.url, port, log)
        try:
            async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
                await wait_until_healthy(http, base_url(port), process)
                api = Api(http, fake_hub, types.SimpleNamespace(prefix=PREFIX))
                await api.create_course(COURSE, [INSTRUCTOR], [STUDENT])
                await api.release(COURSE, ASSIGNMENT, [(FILE_NAME, b'{"cells": []}')], caller=INSTRUCTOR)
                return await api.submit(STUDENT, COURSE, ASSIGNMENT, [(FILE_NAME, CONTENT)])
        finally:
            stop(process)


def refused(call) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


class Console:
    """The auditor's browser on MinIO's console."""

    def __init__(self, url: str, chromium: str, driver: str, screenshots: Path) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.browser = headless_chromium(chromium, driver)
        self.wait = WebDriverWait(self.browser, WAIT)
        self.url = url
        self.screenshots = screenshots

    def shot(self, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        self.browser.save_screenshot(str(path))
        return path

    def log_in(self, user: str, password: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ready

        self.browser.get(f"{self.url}/login")
        self.wait.until(ready.element_to_be_clickable((By.ID, "accessKey"))).send_keys(user)
        self.browser.find_element(By.ID, "secretKey").send_keys(password)
        self.browser.find_element(By.ID, "do-login").click()
        # The object browser, with the AGPL licence dialog over it on a first login.
        self.wait.until(ready.presence_of_element_located((By.ID, "object_browser")))
        self.shot("1-after-login")
        acknowledge = self.browser.find_elements(By.ID, "acknowledge-confirm")
        if acknowledge:
            self.wait.until(ready.element_to_be_clickable((By.ID, "acknowledge-confirm"))).click()
            self.wait.until(ready.invisibility_of_element_located((By.ID, "acknowledge-confirm")))

    def bucket_buttons(self, expected: str) -> list[str]:
        """The buckets in the side bar, once `expected` is among them."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ready

        self.wait.until(ready.presence_of_element_located((By.ID, f"manageBucket-{expected}")))
        buttons = self.browser.find_elements(By.CSS_SELECTOR, "button[id^='manageBucket-']")
        return [button.get_attribute("id").removeprefix("manageBucket-") for button in buttons]

    def open_folder(self, bucket: str, prefix: str, file_name: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ready

        self.browser.get(f"{self.url}/browser/{bucket}/{quote(prefix, safe='')}")
        name = (By.XPATH, f"//span[contains(@class,'fileNameText') and normalize-space()='{file_name}']")
        self.wait.until(ready.visibility_of_element_located(name))
        self.shot("2-submission-folder")
        self.browser.find_element(*name).click()
        self.wait.until(ready.visibility_of_element_located((By.XPATH, "//*[normalize-space()='Object Info']")))

    def metadata(self, headers: list[str]) -> dict[str, str]:
        """The values the details panel shows under the given metadata headers."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ready

        shown = {}
        for header in headers:
            locator = (By.XPATH, f"//div[strong[normalize-space()='{header}']]")
            element = self.wait.until(ready.presence_of_element_located(locator))
            self.browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
            label = element.find_element(By.TAG_NAME, "strong").text
            shown[header] = element.text.removeprefix(label).strip()
        self.shot("3-object-details-metadata")
        return shown

    def close(self) -> None:
        self.browser.quit()


async def test_auditor_finds_the_submission_in_the_console(
    console_minio, mongodb_url, fake_hub, s3_environment, tmp_path: Path
):
    chromium, driver = browser_programs()
    server, console_url = console_minio
    s3_environment(server)
    admin = server.client()
    server.create_bucket(server.bucket)
    other_bucket = server.new_bucket_name()
    server.create_bucket(other_bucket)
    admin.put_object(Bucket=other_bucket, Key="private.txt", Body=b"not for the auditor")

    timestamp = await submit_through_the_api(server, mongodb_url, fake_hub, tmp_path)
    folder = f"{EXCHANGE_PREFIX}/courses/{COURSE}/assignments/{ASSIGNMENT}/submissions/{STUDENT}/"
    keys = [o["Key"] for o in admin.list_objects_v2(Bucket=server.bucket, Prefix=folder)["Contents"]]
    (key,) = [k for k in keys if k.endswith(f"/{FILE_NAME}")]
    submission_folder = key.removesuffix(FILE_NAME)

    password_file = tmp_path / "auditor-password"
    password_file.write_text(AUDITOR_PASSWORD + "\n")
    created = subprocess.run(
        [sys.executable, "-m", "ngshare_s3", "auditor", "create", "--storage", f"s3://{server.bucket}/{EXCHANGE_PREFIX}",
         "--name", AUDITOR, "--password-file", str(password_file)],
        env=server.process_environment(), capture_output=True, text=True, timeout=60,
    )
    assert created.returncode == 0, created.stderr

    # Through the S3 API: the auditor reads, but cannot upload, overwrite or delete.
    auditor = S3Server("minio", server.endpoint_url, AUDITOR, AUDITOR_PASSWORD, bucket=server.bucket).client()
    assert auditor.get_object(Bucket=server.bucket, Key=key)["Body"].read() == CONTENT
    assert refused(lambda: auditor.put_object(Bucket=server.bucket, Key=key, Body=b"forged")) == "AccessDenied"
    assert refused(lambda: auditor.put_object(Bucket=server.bucket, Key=f"{folder}extra", Body=b"x")) == "AccessDenied"
    assert refused(lambda: auditor.delete_object(Bucket=server.bucket, Key=key)) == "AccessDenied"
    assert refused(lambda: auditor.list_objects_v2(Bucket=other_bucket)) == "AccessDenied"
    assert admin.get_object(Bucket=server.bucket, Key=key)["Body"].read() == CONTENT

    stored = admin.head_object(Bucket=server.bucket, Key=key)["Metadata"]
    headers = [f"X-Amz-Meta-{name.capitalize()}" for name in METADATA_KEYS]

    def browse() -> tuple[list[str], dict[str, str] | None]:
        console = Console(console_url, chromium, driver, tmp_path)
        try:
            console.log_in(AUDITOR, AUDITOR_PASSWORD)
            buckets = console.bucket_buttons(server.bucket)
            console.open_folder(server.bucket, submission_folder, FILE_NAME)
            return buckets, (console.metadata(headers) if "kind" in stored else None)
        finally:
            console.close()

    buckets, shown = await asyncio.to_thread(browse)
    assert buckets == [server.bucket], f"the console lists {buckets}; {other_bucket} must not be visible"
    assert (tmp_path / "2-submission-folder.png").stat().st_size > 10_000

    if shown is None:
        pytest.skip(
            "stored objects carry no S3 user metadata yet (x-amz-meta-kind, course, assignment, student, "
            "path, timestamp, uploader, md5): the file listing was checked, its metadata could not be"
        )
    decoded = {name: unquote(shown[f"X-Amz-Meta-{name.capitalize()}"]) for name in METADATA_KEYS}
    assert decoded == {
        "kind": "submission",
        "course": COURSE,
        "assignment": ASSIGNMENT,
        "student": STUDENT,
        "path": FILE_NAME,
        "timestamp": timestamp,
        "uploader": STUDENT,
        "md5": hashlib.md5(CONTENT).hexdigest(),
    }
    assert ADMIN not in decoded.values()
