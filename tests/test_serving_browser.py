"""The page at ``/`` in a real browser: headless Chromium (Debian's package) driven over the
DevTools protocol. The test types as a person would and reads what the page shows.

Skipped where Chromium is not installed (CI installs it: see .ci/run).
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from serving_helpers import Server, replace_file, shop_model, wait_until

from growthrec.pipeline.lists import recommend, similar_items
from growthrec.store.modelfile import load_model

pytest.importorskip("fastapi")
websocket = pytest.importorskip("websocket")  # websocket-client

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None
)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")


class Browser:
    """One headless Chromium page, driven by DevTools protocol commands over a websocket."""

    def __init__(self, profile: Path) -> None:
        argv = [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",  # tests run as root in CI
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1200,900",
            "about:blank",
        ]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        wait_until(lambda: port_file.exists() and port_file.read_text().strip(), timeout=60)
        port = int(port_file.read_text().split()[0])
        import httpx

        targets = wait_until(
            lambda: [
                t
                for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json()
                if t["type"] == "page"
            ],
            timeout=30,
        )
        self.socket = websocket.create_connection(
            targets[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
        )
        self._ids = itertools.count(1)

    def command(self, method: str, **params: object) -> dict:
        """Send one command and return its result (events arriving meanwhile are skipped)."""
        number = next(self._ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == number:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> object:
        result = self.command("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.command("Page.navigate", url=url)
        wait_until(lambda: self.evaluate("document.readyState") == "complete", timeout=30)

    def type_into(self, element_id: str, text: str) -> None:
        """Focus the field, clear it and type ``text`` (real input events), then press Enter."""
        self.evaluate(f"document.getElementById({element_id!r}).value = ''")
        self.evaluate(f"document.getElementById({element_id!r}).focus()")
        self.command("Input.insertText", text=text)
        for kind in ("keyDown", "keyUp"):
            self.command(
                "Input.dispatchKeyEvent",
                type=kind,
                key="Enter",
                code="Enter",
                windowsVirtualKeyCode=13,
                text="\r" if kind == "keyDown" else "",
            )

    def text_when(self, element_id: str, wanted: str) -> str:
        """The element's text once it contains ``wanted``."""
        expression = f"document.getElementById({element_id!r}).textContent"
        return wait_until(lambda: (text := self.evaluate(expression)) and wanted in text and text)

    def texts(self, selector: str) -> list[str]:
        return self.evaluate(
            f"Array.from(document.querySelectorAll({selector!r})).map(e => e.textContent)"
        )

    def screenshot(self, path: Path) -> None:
        data = self.command("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    source = folder / "a.npz"
    shop_model(source, seed=0)
    served = folder / "served.npz"
    replace_file(served, source)
    with Server(served, log=folder / "log") as server:
        server.wait_ready()
        browser = Browser(folder / "profile")
        try:
            browser.open(server.url + "/")
            yield browser, load_model(served), folder
        finally:
            browser.close()


def _wait_list(browser: Browser, selector: str, count: int) -> list[str]:
    return wait_until(
        lambda: (lambda t: t if len(t) == count else None)(browser.texts(selector)), timeout=30
    )


def test_page_shows_the_model(page):
    browser, _, _ = page
    text = browser.text_when("model", "customers")
    assert "svd, 200 customers × 40 items" in text


def test_typing_a_customer_shows_bought_and_recommended_with_reasons(page):
    browser, model, folder = page
    row = 17
    customer = str(model.train.users.ids[row])
    browser.type_into("customer", customer)
    shown = _wait_list(browser, "#recommendations li .item", 10)
    expected, _ = recommend(model, np.array([row]), 10)
    assert shown == [str(i) for i in model.train.items.ids[expected[0]]]
    bought = {str(i) for i in model.train.items.ids[model.train.matrix[row].indices]}
    assert set(browser.texts("#history li .item")) == bought
    reasons = browser.texts("#recommendations li .why")
    assert len(reasons) == 10
    for reason in reasons:
        assert reason.startswith("because of ")
        assert set(reason.removeprefix("because of ").split(", ")) <= bought
    status = browser.evaluate("document.getElementById('status').textContent")
    assert status.startswith(f"Customer {customer}: 10 items from model ")
    browser.screenshot(folder / "customer.png")


def test_unknown_customer_shows_best_sellers_labelled(page):
    browser, _, _ = page
    browser.type_into("customer", "nobody-here")
    status = browser.text_when("status", "best sellers")
    assert status == (
        "Customer nobody-here: best sellers instead (customer nobody-here is not in the "
        "model's training data)"
    )
    assert browser.evaluate("document.getElementById('status').className") == "fallback"
    assert all("buyers" in t for t in browser.texts("#recommendations li .score"))


def test_searching_an_item_shows_its_neighbours(page):
    browser, model, folder = page
    browser.type_into("item-query", "SKU00007")
    titles = browser.text_when("neighbours-title", "Similar to SKU00007")
    category = model.item_attributes["category"][6]
    assert titles == f"Similar to SKU00007 (category: {category})"
    shown = _wait_list(browser, "#neighbours li .item", 10)
    expected, _ = similar_items(model, np.array([6]), 10)
    assert shown == [str(i) for i in model.train.items.ids[expected[0]]]
    time.sleep(0.1)
    browser.screenshot(folder / "item.png")
