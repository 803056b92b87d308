"""The UI's server without a browser: sessions, refusals and actions over a real socket.

``httpx`` keeps no ``Secure`` cookie over plain HTTP, so these tests carry the session
cookie by hand (the browser tests check the cookie's attributes in Chromium).
"""

from __future__ import annotations

import gc
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shipyard.registry.store import Registry
from shipyard.serving import running_server
from shipyard.serving.keys import KeyStore
from shipyard.ui import UISettings, create_ui
from shipyard.ui.session import COOKIE_NAME, SessionCodec, read_or_create_secret


@dataclass
class Served:
    base: str
    keys: KeyStore
    key: str
    key_id: str
    registry: Registry
    secret: bytes


@pytest.fixture(scope="module")
def served(ui_registry: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = ui_registry.copy(tmp_path_factory.mktemp("app") / "home").home
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    keys = KeyStore(home / "api-keys.json")
    record, key = keys.create("app tests")
    secret = read_or_create_secret(home)
    with running_server(create_ui(registry, keys, secret, UISettings(window_size=50))) as base:
        yield Served(base, keys, key, record.id, registry, secret)
    registry.close()


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


class Person:
    """A client that carries the UI's cookie by hand, as a browser would."""

    def __init__(self, served: Served) -> None:
        self.client = httpx.Client(base_url=served.base, follow_redirects=False)
        self.cookie = ""

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        headers = {"Cookie": f"{COOKIE_NAME}={self.cookie}"} if self.cookie else None
        answer = self.client.request(method, path, headers=headers, **options)
        if COOKIE_NAME in answer.cookies:
            self.cookie = answer.cookies[COOKIE_NAME]
        return answer

    def login(self, key: str) -> httpx.Response:
        token = _token(self.request("GET", "/ui/login").text)
        return self.request(
            "POST", "/ui/login", data={"csrf_token": token, "api_key": key, "next": "/ui/"}
        )


@pytest.fixture
def person(served: Served) -> Iterator[Person]:
    someone = Person(served)
    yield someone
    someone.client.close()


def test_login_sets_a_signed_session_and_pages_open(served: Served, person: Person):
    answer = person.login(served.key)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/"
    header = answer.headers["set-cookie"]
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/ui/"):
        assert attribute in header
    session = SessionCodec(served.secret).load(person.cookie)
    assert session is not None
    assert session.key_id == served.key_id
    assert served.key not in person.cookie  # the key itself is never in the cookie
    page = person.request("GET", "/ui/")
    assert page.status_code == 200
    assert "adult" in page.text
    assert "spam" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_a_forged_or_foreign_cookie_is_refused(served: Served, person: Person):
    person.login(served.key)
    forged = person.cookie[:-3] + ("AAA" if not person.cookie.endswith("AAA") else "BBB")
    answer = person.client.get("/ui/", headers={"Cookie": f"{COOKIE_NAME}={forged}"})
    assert answer.status_code == 303
    other = SessionCodec(b"x" * 32).dump(SessionCodec(served.secret).load(person.cookie))  # type: ignore[arg-type]
    refused = person.client.get("/ui/", headers={"Cookie": f"{COOKIE_NAME}={other}"})
    assert refused.status_code == 303


def test_a_wrong_key_gets_the_form_again_with_a_message(served: Served, person: Person):
    answer = person.login("sy_1234_wrong")
    assert answer.status_code == 401
    assert "That API key is not valid" in answer.text
    assert person.request("GET", "/ui/").status_code == 303


def test_revoking_the_key_ends_its_sessions(served: Served, person: Person):
    record, key = served.keys.create("revoked soon")
    person.login(key)
    assert person.request("GET", "/ui/").status_code == 200
    served.keys.revoke(record.id)
    served.keys._checked_at = 0.0  # the store re-reads its file at most once a second
    answer = person.request("GET", "/ui/")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/login")


def test_login_never_redirects_off_the_ui(served: Served, person: Person):
    token = _token(person.request("GET", "/ui/login").text)
    answer = person.request(
        "POST",
        "/ui/login",
        data={"csrf_token": token, "api_key": served.key, "next": "https://elsewhere.example/"},
    )
    assert answer.headers["location"] == "/ui/"


def test_a_csrf_token_of_another_session_is_refused(served: Served, person: Person):
    other = Person(served)
    other.login(served.key)
    stolen = _token(other.request("GET", "/ui/models/adult").text)
    other.client.close()
    person.login(served.key)
    answer = person.request(
        "POST",
        "/ui/models/adult/promote",
        data={"csrf_token": stolen, "version": "2", "reason": "x", "confirmed": "yes"},
    )
    assert answer.status_code == 403
    assert served.registry.resolve("adult").version == 1


def test_rollback_asks_for_a_reason_then_a_confirmation(served: Served, person: Person):
    person.login(served.key)
    token = _token(person.request("GET", "/ui/models/adult").text)
    missing = person.request("POST", "/ui/models/adult/rollback", data={"csrf_token": token})
    assert missing.status_code == 422
    assert "A reason is required" in missing.text
    served.registry.promote("adult", 2, reason="set up for the rollback test")
    reason = {"csrf_token": token, "alias": "champion", "reason": "v2 looked worse live"}
    confirm = person.request("POST", "/ui/models/adult/rollback", data=reason)
    assert confirm.status_code == 200
    assert "Confirm the move" in confirm.text
    assert served.registry.resolve("adult").version == 2
    done = person.request("POST", "/ui/models/adult/rollback", data={**reason, "confirmed": "yes"})
    assert done.status_code == 303
    assert served.registry.resolve("adult").version == 1
    event = served.registry.events("adult")[-1]
    assert event["action"] == "rollback"
    assert event["detail"]["reason"].startswith("v2 looked worse live (web UI, key ")


def test_errors_are_pages_that_say_what_was_wrong(served: Served, person: Person):
    person.login(served.key)
    unknown = person.request("GET", "/ui/models/adlt")
    assert unknown.status_code == 404
    assert "Did you mean" in unknown.text
    bad_version = person.request("GET", "/ui/models/adult/versions/9")
    assert bad_version.status_code == 404
    assert "has no version 9" in bad_version.text
    assert person.request("GET", "/ui/models/spam/versions/1/report").status_code == 400


def test_a_tampered_bundle_shows_its_error_not_its_numbers(
    served: Served, person: Person, tmp_path: Any
):
    person.login(served.key)
    bundle = served.registry.get("adult", 2).bundle_path
    contract = bundle / "contract.yaml"
    kept = tmp_path / "contract.yaml"
    shutil.copyfile(contract, kept)
    try:
        contract.write_text(contract.read_text() + "\n# edited\n")
        answer = person.request("GET", "/ui/models/adult/versions/2")
        assert answer.status_code == 400
        assert "contract.yaml" in answer.text
    finally:
        shutil.copyfile(kept, contract)


def test_the_standalone_app_redirects_to_the_ui_and_serves_its_files(served: Served):
    assert httpx.get(f"{served.base}/").headers["location"] == "/ui/"
    script = httpx.get(f"{served.base}/ui/static/htmx.min.js")
    assert script.status_code == 200
    assert "htmx" in script.text[:2000]


def test_each_worker_of_serve_mounts_the_ui_from_its_recipe(
    ui_registry: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
):
    from shipyard.config import ServingConfig
    from shipyard.serving.server import WORKER_SPEC_VARIABLE, app_from_environment, worker_spec
    from shipyard.ui.mounted import MOUNTS_FACTORY

    home = ui_registry.copy(tmp_path / "home").home
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    keys_file = home / "api-keys.json"
    _, key = KeyStore(keys_file).create("worker")
    settings = ServingConfig(poll_seconds=0, log_predictions=False)
    spec = worker_spec(registry, "adult", settings, keys_file, mounts=MOUNTS_FACTORY)
    import orjson

    monkeypatch.setenv(WORKER_SPEC_VARIABLE, orjson.dumps(spec).decode())
    try:
        with running_server(app_from_environment()) as base:
            assert httpx.get(f"{base}/ui/login").status_code == 200
            assert httpx.get(f"{base}/v1/models/adult").status_code == 401  # still keyed
            keyed = httpx.get(f"{base}/v1/models/adult", headers={"X-API-Key": key})
            assert keyed.status_code == 200
    finally:
        registry.close()
        gc.unfreeze()  # app_from_environment froze this process's objects, as a worker does
    # Workers sign sessions with one secret, kept beside the keys file.
    assert (home / "ui-session.secret").stat().st_mode & 0o777 == 0o600
