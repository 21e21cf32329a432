"""Email: recipients from preferences and visibility, templates, and delivery to a real SMTP
server (aiosmtpd on 127.0.0.1) with a plain-text and an HTML part; retried while it is down;
STARTTLS and implicit TLS with credentials, the server's certificate verified against
``ALEA_SMTP_CA_FILE``."""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services.notification.config import SmtpConfig, load_config
from services.notification.domain import Notifications
from services.notification.email import Mailer, Planner, compose
from services.notification.store import EventRecord, NotificationStore
from services.runtime.config import ConfigError
from services.runtime.context import Principal
from services.runtime.events import TYPES
from services.runtime.peers import Contact
from services.runtime.pki import create_ca, issue
from tests.support.services import free_port

# aiosmtpd's warning for the implicit-TLS server below, which is TLS from the first byte.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
TENANT = str(uuid.uuid4())
ADMIN, ANALYST, VIEWER = (str(uuid.uuid4()) for _ in range(3))
PEOPLE = {
    ADMIN: Contact(ADMIN, "admin@example.com", "Ada", "admin", False),
    ANALYST: Contact(ANALYST, "analyst@example.com", "Ann", "analyst", False),
    VIEWER: Contact(VIEWER, "viewer@example.com", "Vic", "viewer", False),
}


class Directory:
    """Identity's ListContacts over a fixed tenant."""

    async def contacts(self, tenant_id: str, user_ids: list[str], include_admins: bool):
        return [
            c
            for c in PEOPLE.values()
            if c.user_id in user_ids or (include_admins and c.role == "admin")
        ]


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, SmtpConfig]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, SmtpConfig(host="127.0.0.1", port=port, security="none", timeout_seconds=5)
    controller.stop()


SUCCEEDED = {
    "simulation_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "model_id": "m-1",
    "trials": 1_000_000,
    "results": [{"output": "NPV", "mean": 1234.5, "p5": 900.25, "p50": 1230.0, "p95": 1600.75}],
}


async def record(store: NotificationStore, type_: str, user_id: str, data: dict) -> EventRecord:
    now = time.time()
    event = EventRecord(0, str(uuid.uuid4()), TENANT, TYPES[type_], user_id, "r/1", data, now, now)

    async def no_webhooks(session, stored) -> None:
        pass

    return (await store.record_event(event, no_webhooks))[0]


async def deliver(store: NotificationStore, smtp: SmtpConfig) -> None:
    planner = Planner(store, Directory(), 0.01)
    while await planner.plan_once():
        pass
    mailer = Mailer(store, smtp, 0.01)
    for email in await store.due_emails(time.time(), 100):
        await mailer.send(email)


async def test_a_finished_simulation_is_emailed_to_its_owner_with_both_parts(store, smtp) -> None:
    inbox, config = smtp
    await Planner(store, Directory(), 0.01).plan_once()  # the cursor starts at the end
    await record(store, "simulation.succeeded", ANALYST, SUCCEEDED)
    await deliver(store, config)
    [(recipients, raw)] = inbox.messages
    assert recipients == ["analyst@example.com"]
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "Alea: simulation 7c9e6679 finished"
    text = message.get_body(("plain",)).get_content()
    page = message.get_body(("html",)).get_content()
    for part in (text, page):
        assert "1,234.5" in part and "900.25" in part and "1,230" in part and "1,600.75" in part
    assert "http" not in text and "href" not in page  # a link-free summary
    await deliver(store, config)
    assert len(inbox.messages) == 1  # planned and sent once


async def test_preferences_decide_who_gets_what(store: NotificationStore, smtp) -> None:
    inbox, config = smtp
    await Planner(store, Directory(), 0.01).plan_once()
    notifications = Notifications(store, None, None, email_on=True)  # type: ignore[arg-type]
    admin = Principal(user_id=ADMIN, tenant_id=TENANT, role="admin")
    analyst = Principal(user_id=ANALYST, tenant_id=TENANT, role="analyst")
    await record(
        store, "quota.warning", ANALYST, {"percent": 80, "used_bytes": 8, "limit_bytes": 10}
    )
    await deliver(store, config)
    assert [r for r, _ in inbox.messages] == [["admin@example.com"]]  # admins, by default

    await notifications.update_preferences(analyst, ["quiet"], {"quiet": True})
    await notifications.update_preferences(
        admin,
        ["email_only_mine", "email_event_types"],
        {"email_only_mine": False, "email_event_types": [TYPES["simulation.failed"]]},
    )
    await record(store, "simulation.failed", ANALYST, {**SUCCEEDED, "reason": "boom"})
    await deliver(store, config)
    assert [r for r, _ in inbox.messages[1:]] == [["admin@example.com"]]  # quiet analyst: none
    body = message_from_bytes(inbox.messages[1][1], policy=policy.default)
    assert "Reason: boom" in body.get_body(("plain",)).get_content()

    await record(store, "api_key.created", VIEWER, {"api_key_id": "k"})  # not in their types
    await deliver(store, config)
    assert len(inbox.messages) == 2
    stored = await notifications.preferences(analyst)
    assert stored.quiet and stored.email_enabled and stored.email_only_mine


async def test_a_mail_server_that_is_down_gets_the_message_later(store, smtp) -> None:
    inbox, config = smtp
    down = SmtpConfig(host="127.0.0.1", port=free_port(), security="none", timeout_seconds=2)
    await Planner(store, Directory(), 0.01).plan_once()
    await record(store, "simulation.succeeded", ANALYST, SUCCEEDED)
    await deliver(store, down)
    [waiting] = await store.due_emails(time.time() + 120, 10)
    assert waiting.attempts == 1 and waiting.last_error
    await Mailer(store, config, 0.01).send(waiting)
    assert len(inbox.messages) == 1


def test_templates_escape_what_users_typed() -> None:
    now = time.time()
    event = EventRecord(
        1,
        "e",
        TENANT,
        TYPES["simulation.failed"],
        "",
        "r",
        {"reason": "<script>x</script>"},
        now,
        now,
    )
    _, text, page = compose(event)
    assert "<script>" in text and "<script>" not in page and "&lt;script&gt;" in page


class Accounts:
    """An aiosmtpd authenticator accepting one user; keeps who logged in."""

    def __init__(self) -> None:
        self.logins: list[str] = []

    def __call__(self, server, session, envelope, mechanism, data) -> AuthResult:
        if isinstance(data, LoginPassword) and (data.login, data.password) == (b"ada", b"s3cret"):
            self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@pytest.fixture(scope="module")
def mail_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """The mail server's certificate (for 127.0.0.1) from a CA of its own: the CA file and
    the server's TLS context."""
    directory = tmp_path_factory.mktemp("mail-pki")
    ca = create_ca("mail test CA")
    ca.write(directory, "ca")
    crt, key = issue(ca, "smtp").write(directory, "smtp")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(crt, key)
    return directory / "ca.crt", context


@pytest.fixture(params=["starttls", "tls"])
def secure_smtp(request, mail_pki) -> Iterator[tuple[Inbox, Accounts, SmtpConfig]]:
    ca_file, context = mail_pki
    inbox, accounts, port = Inbox(), Accounts(), free_port()
    tls = (
        {"tls_context": context, "require_starttls": True}
        if request.param == "starttls"
        # aiosmtpd counts only STARTTLS as TLS for AUTH; on an implicit-TLS port it must be
        # told the connection already is.
        else {"ssl_context": context, "auth_require_tls": False}
    )
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=accounts, auth_required=True, **tls
    )
    controller.start()
    config = SmtpConfig(
        host="127.0.0.1",
        port=port,
        security=request.param,
        username="ada",
        password="s3cret",
        ca_file=str(ca_file),
        timeout_seconds=5,
    )
    yield inbox, accounts, config
    controller.stop()


async def test_email_goes_over_tls_with_credentials_to_a_verified_server(
    store, secure_smtp
) -> None:
    inbox, accounts, config = secure_smtp
    await Planner(store, Directory(), 0.01).plan_once()
    await record(store, "simulation.succeeded", ANALYST, SUCCEEDED)
    await deliver(store, config)
    assert accounts.logins == ["ada"]
    [(recipients, raw)] = inbox.messages
    assert recipients == ["analyst@example.com"]
    assert message_from_bytes(raw, policy=policy.default).get_body(("html",)) is not None


async def test_an_unverified_server_or_wrong_password_gets_nothing(
    store, secure_smtp, tmp_path
) -> None:
    inbox, accounts, config = secure_smtp
    stranger = tmp_path / "other-ca.crt"
    stranger.write_bytes(create_ca("another CA").cert_pem)
    await Planner(store, Directory(), 0.01).plan_once()
    await record(store, "simulation.succeeded", ANALYST, SUCCEEDED)
    await deliver(store, replace(config, ca_file=str(stranger)))
    [waiting] = await store.due_emails(time.time() + 120, 10)
    assert "CERTIFICATE_VERIFY_FAILED" in waiting.last_error
    await Mailer(store, replace(config, password="guess"), 0.01).send(waiting)
    [waiting] = await store.due_emails(time.time() + 1000, 10)
    assert waiting.attempts == 2 and "535" in waiting.last_error  # authentication failed
    assert inbox.messages == [] and accounts.logins == []


def test_a_missing_ca_file_stops_the_service_naming_it(tmp_path) -> None:
    with pytest.raises(ConfigError, match="ALEA_SMTP_CA_FILE"):
        load_config({"ALEA_SMTP_HOST": "mail", "ALEA_SMTP_CA_FILE": str(tmp_path / "no.crt")})
    assert load_config({"ALEA_SMTP_CA_FILE": __file__}).smtp.ca_file == __file__
