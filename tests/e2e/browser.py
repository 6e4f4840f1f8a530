"""Debian's headless Chromium, driven by Selenium, for the tests that look at a page as a person
would (MinIO's console, JupyterLab's Assignments panel)."""

from __future__ import annotations

import shutil

import pytest


def browser_programs() -> tuple[str, str]:
    """Debian's chromium and chromedriver, and selenium; or skip saying which is missing."""
    chromium, driver = shutil.which('chromium'), shutil.which('chromedriver')
    reason = None
    if chromium is None or driver is None:
        reason = "the browser test needs Debian's chromium and chromium-driver (`chromium`, `chromedriver` on PATH)"
    else:
        try:
            import selenium  # noqa: F401
        except ImportError:
            reason = "the browser test needs selenium (pip install 'selenium<4.52')"
    if reason:
        print(f'\nSKIPPED: {reason}')
        pytest.skip(reason)
    return chromium, driver


def headless_chromium(chromium: str, driver: str):
    """A Chromium window of 1400 × 1000 pixels without a screen."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ('--headless=new', '--no-sandbox', '--window-size=1400,1000', '--disable-dev-shm-usage'):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(driver))
