"""Notice and takedown: the abuse-contact directory, the notice's wording and X-ARF attachment, and the
worker sending it through a real SMTP server (the test's own, on 127.0.0.1), exactly as configured."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from certs.devnet import DEV_MEMBERS
from demo.network import Network, OperatorClient, read_toml, staff_token, write_toml
from node.notices.contacts import ContactBook, ContactError, checked, export_csv
from node.notices.models import AbuseContact, Notice
from node.notices.services import DEFAULT_TEMPLATES, NoticeError, check_template, render, xarf
from node.received.models import InboundCase
from tests.conftest import execute, make_network, query

NL, DE = DEV_MEMBERS[0].member_id, DEV_MEMBERS[1].member_id
NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)


# --- the directory, without a network ----------------------------------------------------------------------


def test_a_contact_is_checked_field_by_field() -> None:
    with pytest.raises(ContactError) as caught:
        checked({"name": "", "email": "not-an-address", "asns": "AS12x", "networks": "300.1.1.0/24", "role": "isp"})
    assert set(caught.value.errors) == {"name", "email", "asns", "networks", "role"}
    with pytest.raises(ContactError) as nothing_to_match:
        checked({"name": "Example Hosting", "email": "abuse@hosting.example"})
    assert "domains" in nothing_to_match.value.errors
    with pytest.raises(ContactError) as police:
        checked({"name": "Police", "role": "police", "email": "cyber@police.example"})
    assert "country" in police.value.errors
    fine = checked(
        {
            "name": " Example Hosting ",
            "email": "Abuse@Hosting.example",
            "asns": "AS64501, 64502",
            "networks": "192.0.2.7/24",
            "domains": "Hosting.Example.",
            "language": "DE",
        }
    )
    assert fine["name"] == "Example Hosting" and fine["email"] == "abuse@hosting.example"
    assert (
        fine["asns"] == [64501, 64502]
        and fine["networks"] == ["192.0.2.0/24"]
        and fine["domains"] == ["hosting.example"]
    )
    assert fine["language"] == "de" and fine["renotice_hours"] == 24


@pytest.fixture
def book(tmp_path: Any) -> Iterator[ContactBook]:
    """A contact book on a real node database (SQLite, migrated), in an app context."""
    from demo.network import lay_out, register_members, service_app
    from node.db import db
    from tests.conftest import TEMPLATES

    layout = lay_out(tmp_path / "net", members=(DEV_MEMBERS[0],))
    register_members(layout, templates=TEMPLATES["sqlite"])
    app = service_app(layout.spec(NL), "worker")
    with app.app_context():
        yield ContactBook(db.session, actor="account:sam", now=NOW)
        db.session.remove()
        db.engine.dispose()


def test_the_likeliest_contact_is_suggested_first_and_says_why(book: ContactBook) -> None:
    for name, fields in (
        ("Backbone", {"asns": "AS64501"}),
        ("Wide Range", {"networks": "192.0.0.0/16"}),
        ("Narrow Range", {"networks": "192.0.2.0/24"}),
        ("Image Host", {"domains": "images.example"}),
        ("Elsewhere", {"networks": "198.51.100.0/24"}),
    ):
        book.create({"name": name, "email": f"abuse@{name.lower().replace(' ', '-')}.example", **fields})
    book.session.commit()
    found = book.suggest("cdn.images.example", [{"address": "192.0.2.10", "asn": 64501}])
    assert [s.contact.name for s in found] == ["Image Host", "Narrow Range", "Wide Range", "Backbone"]
    assert found[0].why == "the host is in images.example"
    assert found[1].why == "an address of the host is in 192.0.2.0/24"
    assert found[3].why == "AS64501 announces 192.0.2.10"
    assert book.suggest("other.example", [{"address": "203.0.113.1", "asn": None}]) == []
    book.disable(found[0].contact)
    assert [s.contact.name for s in book.suggest("cdn.images.example", [])] == []


def test_a_csv_export_imports_again_and_a_bad_file_imports_nothing(book: ContactBook) -> None:
    from sqlalchemy import func, select

    book.create(
        {
            "name": "Image Host",
            "email": "abuse@img.example",
            "domains": "images.example",
            "language": "nl",
            "note": "Weekdays only",
        }
    )
    book.create({"name": "Backbone", "email": "noc@backbone.example", "asns": "AS64501"})
    book.session.commit()
    text = export_csv(book.active())
    assert text.splitlines()[0] == "name,role,email,language,asns,networks,domains,country,renotice_hours,note"
    changed = (
        text.replace("abuse@img.example", "abuse@images.example")
        + "Police NL,police,cyber@politie.example,nl,,,,NL,24,\n"
    )
    assert book.import_csv(changed) == (1, 2)
    book.session.commit()
    by_name = {c.name: c for c in book.active()}
    assert by_name["Image Host"].email == "abuse@images.example" and by_name["Image Host"].note == "Weekdays only"
    assert by_name["Backbone"].asns == [64501] and by_name["Police NL"].country == "NL"
    broken = changed + "No Address,hosting,,en,,,x.example,,24,\nBad Net,hosting,a@b.example,en,,999.0.0.0/8,,,24,\n"
    with pytest.raises(ContactError) as caught:
        book.import_csv(broken)
    book.session.rollback()
    assert set(caught.value.errors) == {"row 5", "row 6"} and "email" in caught.value.errors["row 5"]
    assert book.session.scalar(select(func.count()).select_from(AbuseContact)) == 3
    with pytest.raises(ContactError, match="header"):
        book.import_csv("who,what\nx,y\n")


def test_templates_render_and_a_broken_one_is_refused_with_the_reason() -> None:
    for language, (subject, body) in DEFAULT_TEMPLATES.items():
        check_template(subject, body)
        _, text = render(
            subject,
            body,
            {
                "url": "hxxp://a[.]example/x",
                "reference": "R",
                "hotline": "H",
                "first_reported": "2026-11-30",
                "legal_status": "baseline",
                "media_type": "image",
            },
        )
        assert "hxxp://a[.]example/x" in text, language
    with pytest.raises(NoticeError, match="must contain"):
        check_template("Subject", "No address here")
    with pytest.raises(NoticeError, match="does not work"):
        check_template("Subject {{ reference", "{{ url }}")
    with pytest.raises(NoticeError, match="does not work"):
        check_template("Subject", "{{ url }} {{ nonsense }}")
    with pytest.raises(NoticeError):
        check_template("{{ ''.__class__.__mro__ }}", "{{ url }} {{ url.__class__.__init__.__globals__ }}")


def test_the_xarf_attachment_is_a_v4_content_csam_report() -> None:
    notice = Notice(
        id="8f14e45f-ceea-4e6b-9a1b-2a3c4d5e6f70",
        url="http://images.example/a.jpg",
        created_at=NOW,
        details={
            "legal_status": "baseline",
            "media_type": "image",
            "first_reported": "2026-11-29T10:00:00+00:00",
            "content_hashes": [{"alg": "sha256", "value": "ab" * 32}, {"alg": "pdq", "value": "cd" * 32}],
        },
    )
    report = xarf(
        notice,
        org="Hotline Germany",
        contact="abuse-desk@hotline.example",
        domain="hotline.example",
        host="images.example",
    )
    for key in (
        "xarf_version",
        "report_id",
        "timestamp",
        "reporter",
        "sender",
        "source_identifier",
        "category",
        "type",
    ):
        assert key in report
    assert report["xarf_version"].startswith("4.") and report["category"] == "content" and report["type"] == "csam"
    assert report["classification"] == "baseline" and report["detection_method"] == "manual_review"
    assert report["hash_values"] == {"sha256": "ab" * 32} and report["url"] == "http://images.example/a.jpg"
    assert report["reporter"] == {
        "org": "Hotline Germany",
        "contact": "abuse-desk@hotline.example",
        "domain": "hotline.example",
    }


# --- through the network and a real SMTP server -------------------------------------------------------------------


class Inbox:
    """The test's SMTP server (aiosmtpd) on 127.0.0.1: keeps every message; refuses ``refuse@…``."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()
        with socket.socket() as probe:  # A free port (aiosmtpd checks its server by connecting to it).
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if address.startswith("refuse@"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted"

    def wait(self, count: int, timeout: float = 20) -> list[email.message.EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise TimeoutError(f"{len(self.messages)} messages, expected {count}")

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    yield box
    box.close()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory, inbox: Inbox) -> Iterator[Network]:
    network = make_network(tmp_path_factory.mktemp("notices"), "sqlite", None, members=DEV_MEMBERS[:2])
    spec = network.layout.spec(DE)
    write_toml(
        spec.config,
        {
            **read_toml(spec.config),
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": inbox.port,
            "NOTICE_FROM": "abuse-desk@hotline-de.example",
            "NOTICE_GROUP_SECONDS": 0,
            "NOTICE_GROUP_MAX": 1,
            "NOTICE_SECONDS": 1,
        },
    )
    network.start()
    yield network
    network.stop()


def supervisor(network: Network, member_id: str) -> OperatorClient:
    spec = network.layout.spec(member_id)
    return OperatorClient(
        dataclasses.replace(spec, api_token=staff_token(spec, "sam-script", "supervisor")), network.layout.web.ca
    )


def received_case(net: Network, url: str) -> str:
    report = net.client(NL).report(
        url=url,
        hosting_country="DE",
        legal_status="baseline",
        media_type="image",
        content_hashes=[{"alg": "sha256", "value": "7e" * 32}],
    )
    net.client(DE).wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    return str(report["id"])


def test_a_received_cases_trace_is_kept_for_a_day_then_made_again(net: Network) -> None:
    """Looking at the contacts for a received case (the notice page, its API, an escalation) traces the
    host once and keeps the trace on the case: the resolver is not asked again on every look until the
    trace is a day old."""
    analyst, database = net.client(DE), net.layout.spec(DE).database
    case_id = received_case(net, "http://images.example/kept/1")

    def traced_at() -> str | None:
        return query(database, "SELECT traced_at FROM inbound_cases WHERE id = :id", id=case_id)[0][0]

    assert traced_at() is None  # Nothing traced until someone looks.
    first = analyst.get(f"/api/v1/received/{case_id}/contacts")
    kept = traced_at()
    assert kept is not None and first["host"] == "images.example" and first["addresses"]
    assert analyst.get(f"/api/v1/received/{case_id}/contacts") == first
    assert traced_at() == kept  # The kept trace answered.
    day_old = dt.datetime.fromisoformat(str(kept)) - dt.timedelta(hours=24, seconds=1)
    assert execute(database, "UPDATE inbound_cases SET traced_at = :at WHERE id = :id", at=str(day_old), id=case_id)
    assert analyst.get(f"/api/v1/received/{case_id}/contacts")["host"] == "images.example"
    assert str(traced_at()) > str(kept)  # Traced again, and kept anew.


def test_a_notice_reaches_the_providers_abuse_desk_and_the_reporting_hotline_learns_of_it(
    net: Network, inbox: Inbox
) -> None:
    boss, analyst = supervisor(net, DE), net.client(DE)
    made = boss.request(
        "POST",
        "/api/v1/contacts",
        json={
            "name": "Example Hosting GmbH",
            "email": "abuse@hosting.example",
            "networks": "192.0.2.0/24",
            "language": "de",
        },
    )
    assert made.status_code == 201, made.text
    refused = boss.request("POST", "/api/v1/contacts", json={"name": "", "email": "nope"})
    assert refused.status_code == 422 and "email" in refused.json()["detail"]
    case_id = received_case(net, "http://images.example/notice/1")
    suggested = analyst.get(f"/api/v1/received/{case_id}/contacts")
    assert suggested["host"] == "images.example" and suggested["items"][0]["name"] == "Example Hosting GmbH"
    assert suggested["items"][0]["why"] == "an address of the host is in 192.0.2.0/24"
    queued = analyst.request("POST", f"/api/v1/received/{case_id}/notices", json={"contact_id": made.json()["id"]})
    assert queued.status_code == 201 and queued.json()["state"] == "pending"
    again = analyst.request("POST", f"/api/v1/received/{case_id}/notices", json={"contact_id": made.json()["id"]})
    assert again.status_code in (201, 409)  # Queued twice only if the first was already sent.
    [message, *_] = inbox.wait(1)
    assert message["To"] == "abuse@hosting.example" and message["From"] == "abuse-desk@hotline-de.example"
    assert message["Subject"].startswith("Darstellungen sexuellen Kindesmissbrauchs")
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "hxxp://images[.]example/notice/1" in text and "http://images.example" not in text
    [attachment] = [part for part in message.iter_attachments() if part.get_filename() == "xarf.json"]
    report = json.loads(attachment.get_content())
    assert (
        report["category"] == "content"
        and report["type"] == "csam"
        and report["url"] == "http://images.example/notice/1"
    )
    assert report["hash_values"] == {"sha256": "7e" * 32} and report["source_identifier"] == "images.example"
    sent = analyst.wait_for(f"/api/v1/received/{case_id}/notices", lambda body: body["items"][0]["state"] == "sent")
    assert sent["items"][0]["message_id"] == message["Message-ID"]
    # "Notice sent" is recorded on the case and travels back to the hotline that reported it.
    assert analyst.get(f"/api/v1/received/{case_id}")["status"] == "ntd_sent"
    net.client(NL).wait_for(f"/api/v1/reports/{case_id}", lambda r: r["state"] == "ntd_sent")


def test_a_refused_recipient_is_shown_on_the_case_and_not_retried(net: Network, inbox: Inbox) -> None:
    boss, analyst = supervisor(net, DE), net.client(DE)
    made = boss.request(
        "POST",
        "/api/v1/contacts",
        json={"name": "Gone Hosting", "email": "refuse@gone.example", "domains": "gone.example"},
    )
    case_id = received_case(net, "http://www.gone.example/x")
    queued = analyst.request("POST", f"/api/v1/received/{case_id}/notices", json={"contact_id": made.json()["id"]})
    assert queued.status_code == 201
    failed = analyst.wait_for(f"/api/v1/received/{case_id}/notices", lambda body: body["items"][0]["state"] == "failed")
    assert "refused the recipient (550)" in failed["items"][0]["last_error"] and failed["items"][0]["attempts"] == 1
    assert analyst.get(f"/api/v1/received/{case_id}")["status"] == "received"
    unknown = analyst.request("POST", f"/api/v1/received/{case_id}/notices", json={"contact_id": "nobody"})
    assert unknown.status_code == 404
    malformed = analyst.request("POST", f"/api/v1/received/{case_id}/notices", json={"contact": 1})
    assert malformed.status_code == 422


def test_the_provider_is_reminded_until_the_content_is_gone_never_on_a_quiet_day(net: Network, inbox: Inbox) -> None:
    """The ladder in the worker's own code, in this process, with its clock moved a day on."""
    from demo.network import service_app
    from node.notices.ladder import past_deadline
    from node.notices.tasks import send_notices

    boss, analyst = supervisor(net, DE), net.client(DE)
    made = boss.request(
        "POST",
        "/api/v1/contacts",
        json={"name": "Slow Hosting", "email": "abuse@slow.example", "domains": "slow.example", "renotice_hours": "24"},
    )
    case_id = received_case(net, "http://www.slow.example/still-up")
    analyst.request("POST", f"/api/v1/received/{case_id}/notices", json={"contact_id": made.json()["id"]})
    analyst.wait_for(f"/api/v1/received/{case_id}/notices", lambda body: body["items"][0]["state"] == "sent")
    before = len(inbox.wait(1))
    app = service_app(net.layout.spec(DE), "worker")
    rt = app.extensions["hotline"]
    start = dt.datetime.now(dt.UTC)
    with app.app_context():
        session = rt.db.session
        rt.clock = lambda: start + dt.timedelta(hours=23)
        send_notices(app)
        assert len(inbox.messages) == before  # Not yet: 24 hours after the last notice.
        a_day_on = start + dt.timedelta(hours=25)
        app.config["NOTICE_QUIET_DAYS"] = [a_day_on.date().isoformat()]
        rt.clock = lambda: a_day_on
        assert send_notices(app) == 0  # A public holiday: nothing goes out.
        app.config["NOTICE_QUIET_DAYS"] = []
        assert send_notices(app) >= 1
        reminders = [m for m in inbox.wait(before + 1)[before:] if m["To"] == "abuse@slow.example"]
        assert len(reminders) == 1 and reminders[0]["Subject"].startswith("Reminder 1: ")
        assert "notice number 2" in reminders[0].get_body(preferencelist=("plain",)).get_content()
        overdue = past_deadline(session, now=start + dt.timedelta(hours=73), hours=72)
        assert case_id in {item.case.id for item in overdue}
        assert case_id not in {
            item.case.id for item in past_deadline(session, now=start + dt.timedelta(hours=71), hours=72)
        }
        session.remove()
        rt.db.engine.dispose()
    # The reminder is on the case; the status went back once, not once per reminder.
    notices = analyst.get(f"/api/v1/received/{case_id}/notices")["items"]
    assert [n["state"] for n in notices] == ["sent", "sent"]


def test_a_reminder_still_waiting_when_the_content_goes_is_cancelled_not_sent(net: Network, inbox: Inbox) -> None:
    from demo.network import service_app
    from node.notices.ladder import schedule_renotices
    from node.notices.tasks import send_notices

    boss, analyst = supervisor(net, DE), net.client(DE)
    made = boss.request(
        "POST",
        "/api/v1/contacts",
        json={"name": "Late Hosting", "email": "abuse@late.example", "domains": "late.example", "renotice_hours": "24"},
    )
    case_id = received_case(net, "http://late.example/gone-soon")
    analyst.request("POST", f"/api/v1/received/{case_id}/notices", json={"contact_id": made.json()["id"]})
    analyst.wait_for(f"/api/v1/received/{case_id}/notices", lambda body: body["items"][0]["state"] == "sent")
    app = service_app(net.layout.spec(DE), "worker")
    rt = app.extensions["hotline"]
    start = dt.datetime.now(dt.UTC)
    with app.app_context():
        # A day on, the reminder is written, to go out in an hour (a grouping window).
        assert len(schedule_renotices(rt.db.session, now=start + dt.timedelta(hours=25), group_seconds=3600)) == 1
        rt.db.session.commit()
    assert analyst.request("POST", f"/api/v1/received/{case_id}/status", json={"status": "removed"}).status_code == 201
    with app.app_context():
        rt.clock = lambda: start + dt.timedelta(hours=27)
        send_notices(app)
        rt.db.session.remove()
        rt.db.engine.dispose()
    notices = analyst.get(f"/api/v1/received/{case_id}/notices")["items"]
    assert sorted(n["state"] for n in notices) == ["cancelled", "sent"]
    assert [m for m in inbox.messages if m["To"] == "abuse@late.example"][1:] == []
    assert analyst.get(f"/api/v1/received/{case_id}")["status"] == "removed"


def test_notices_due_while_the_worker_is_killed_again_and_again_are_all_sent_once(net: Network, inbox: Inbox) -> None:
    """SIGKILL the worker while 24 notices are due, again and again, each time right after the mail server
    accepted a message: none is lost, none goes out under a second Message-ID, and every sent notice is
    followed up. SMTP has no way to make a hand-over idempotent, so a kill that lands between the server's
    acceptance and the worker's one-row commit resends that message, with the same Message-ID (the test
    aims its kills at exactly that moment; at random moments the window is about a millisecond)."""
    boss, analyst = supervisor(net, DE), net.client(DE)
    made = boss.request(
        "POST",
        "/api/v1/contacts",
        json={"name": "Crash Hosting", "email": "abuse@crash.example", "domains": "crash.example"},
    ).json()
    cases = [received_case(net, f"http://crash.example/{n}") for n in range(24)]
    before = {m["Message-ID"] for m in inbox.messages}
    worker = net.processes[DE].surfaces["worker"]
    worker.kill()
    for case_id in cases:
        assert (
            analyst.request("POST", f"/api/v1/received/{case_id}/notices", json={"contact_id": made["id"]}).status_code
            == 201
        )
    kills = 0
    for _ in range(5):
        # Start the worker and kill it as soon as it is sending: right after the next message arrives.
        seen = len(inbox.messages)
        worker.start()
        worker.wait_ready()
        arrived = time.monotonic() + 20
        while len(inbox.messages) == seen and time.monotonic() < arrived:
            time.sleep(0.005)
        worker.kill()
        kills += 1
    worker.start()
    worker.wait_ready()
    for case_id in cases:
        analyst.wait_for(f"/api/v1/received/{case_id}/notices", lambda body: body["items"][0]["state"] == "sent")
    expected = {analyst.get(f"/api/v1/received/{c}/notices")["items"][0]["message_id"] for c in cases}
    assert len(expected) == 24
    delivered = [
        m["Message-ID"] for m in inbox.messages if m["Message-ID"] not in before and m["To"] == "abuse@crash.example"
    ]
    assert set(delivered) == expected  # Every notice arrived, under its own Message-ID only.
    duplicates = len(delivered) - len(expected)
    assert duplicates <= kills, (duplicates, kills)
    # Every sent notice was followed up, even those whose worker died between the two commits.
    for case_id in cases:
        analyst.wait_for(f"/api/v1/received/{case_id}", lambda c: c["status"] == "ntd_sent")


def test_notices_to_one_address_within_the_window_go_in_one_message(net: Network, inbox: Inbox) -> None:
    """Three notices to one provider queued together: one message, every address in it, one X-ARF report
    per address; all three notices carry its Message-ID. (The worker's own code, in this process, with
    grouping on; the node's worker is stopped meanwhile.)"""
    from demo.network import service_app
    from node.notices.tasks import send_notices

    boss, analyst = supervisor(net, DE), net.client(DE)
    made = boss.request(
        "POST",
        "/api/v1/contacts",
        json={"name": "Batch Hosting", "email": "abuse@batch.example", "domains": "batch.example"},
    ).json()
    cases = [received_case(net, f"http://batch.example/{n}.jpg") for n in range(3)]
    worker = net.processes[DE].surfaces["worker"]
    worker.kill()
    try:
        for case_id in cases:
            analyst.request("POST", f"/api/v1/received/{case_id}/notices", json={"contact_id": made["id"]})
        before = len(inbox.messages)
        app = service_app(net.layout.spec(DE), "worker", NOTICE_GROUP_MAX=20)
        with app.app_context():
            assert send_notices(app) == 3
            app.extensions["hotline"].db.session.remove()
            app.extensions["hotline"].db.engine.dispose()
    finally:
        worker.start()
        worker.wait_ready()
    [message] = inbox.wait(before + 1)[before:]
    assert message["Subject"].endswith("(+2)")
    text = message.get_body(preferencelist=("plain",)).get_content()
    for n in range(3):
        assert f"hxxp://batch[.]example/{n}.jpg" in text
    reports = [json.loads(part.get_content()) for part in message.iter_attachments()]
    assert sorted(r["url"] for r in reports) == [f"http://batch.example/{n}.jpg" for n in range(3)]
    ids = {analyst.get(f"/api/v1/received/{c}/notices")["items"][0]["message_id"] for c in cases}
    assert ids == {message["Message-ID"]}


def test_past_the_hosts_deadline_the_upstream_is_notified_and_then_the_police_are_next(
    net: Network, inbox: Inbox
) -> None:
    """The escalation ladder in the worker's own code, in this process, with its clock moved on."""
    from demo.network import service_app
    from node.notices.ladder import past_deadline
    from node.notices.tasks import send_notices
    from node.received.models import InboundCase

    boss, analyst = supervisor(net, DE), net.client(DE)
    host = boss.request(
        "POST",
        "/api/v1/contacts",
        json={"name": "Stubborn Hosting", "email": "abuse@stubborn.example", "domains": "stubborn.example"},
    ).json()
    # images.example resolves (in the demo table) to 192.0.2.10, announced by AS64501.
    upstream = boss.request(
        "POST",
        "/api/v1/contacts",
        json={"name": "Transit Upstream", "role": "upstream", "email": "noc@transit.example", "asns": "AS64501"},
    ).json()
    assert upstream["role"] == "upstream"
    case_id = received_case(net, "http://images.example/stubborn/1.jpg")
    analyst.request("POST", f"/api/v1/received/{case_id}/notices", json={"contact_id": host["id"]})
    analyst.wait_for(f"/api/v1/received/{case_id}/notices", lambda body: body["items"][0]["state"] == "sent")
    start = dt.datetime.now(dt.UTC)
    worker = net.processes[DE].surfaces["worker"]
    worker.kill()  # This process plays the worker from here, with its clock moved on.
    try:
        app = service_app(net.layout.spec(DE), "worker")
        rt = app.extensions["hotline"]
        with app.app_context():
            session = rt.db.session
            rt.clock = lambda: start + dt.timedelta(hours=73)
            before = len(inbox.messages)
            while send_notices(app):  # Twenty messages a run; the other cases of this module are due too.
                pass
            to_upstream = [
                m.get_body(preferencelist=("plain",)).get_content()
                for m in inbox.messages[before:]
                if m["To"] == "noc@transit.example"
            ]
            assert any("hxxp://images[.]example/stubborn/1.jpg" in text for text in to_upstream)
            case = session.get(InboundCase, case_id)
            assert case is not None
            step = past_deadline(session, now=start + dt.timedelta(hours=73), hours=72, upstream_hours=48, only=case)
            assert step == []  # The upstream has its own 48 hours now.
            later = past_deadline(
                session, now=start + dt.timedelta(hours=73 + 49), hours=72, upstream_hours=48, only=case
            )
            assert [item.step for item in later] == ["upstream"]  # Next: the police, by a person.
            session.remove()
            rt.db.engine.dispose()
    finally:
        worker.start()
        worker.wait_ready()
    notices = analyst.get(f"/api/v1/received/{case_id}/notices")["items"]
    # The first notice, the host's reminder (a day on), and the escalation to its upstream.
    assert sorted(n["to"] for n in notices) == [
        "abuse@stubborn.example",
        "abuse@stubborn.example",
        "noc@transit.example",
    ]


def test_the_ladder_reads_the_notices_of_open_cases_not_every_open_case() -> None:
    """70,000 open received cases, four with notices: the deadlines and re-notices come out right, and
    the ladder no longer names every open case in one statement (PostgreSQL refuses more than 65,535
    parameters: the worker's ladder job failed at that size, and with it the supervisor's overdue page)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from node.notices.ladder import past_deadline, schedule_renotices
    from tests.conftest import TEMPLATES, PostgresDatabases

    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    postgres = PostgresDatabases()
    engine = create_engine(postgres.create("ladder", template=TEMPLATES["postgresql"]["node"]))
    try:
        with Session(engine) as session:
            session.execute(
                text(
                    "INSERT INTO inbound_cases (id, origin, url, url_fingerprint, hosting_country, legal_status,"
                    " priority, content_hashes, details, confirmed_at, received_at, status, same_material)"
                    " SELECT 'case-' || n, 'hotline-nl', 'http://many.example/' || n, md5(n::text) || md5(n::text),"
                    " 'DE', 'baseline', 'normal', '[]', '{}', :now, :now, CASE WHEN n = 4 THEN 'removed' ELSE"
                    " 'received' END, '[]' FROM generate_series(1, 70000) AS n"
                ),
                {"now": now - dt.timedelta(days=10)},
            )
            contacts = {
                role: AbuseContact(
                    id=f"contact-{role}",
                    name=f"{role} contact",
                    role=role,
                    email=f"abuse@{role}.example",
                    renotice_hours=24,
                    created_at=now,
                    updated_at=now,
                )
                for role in ("hosting", "upstream")
            }
            session.add_all(contacts.values())
            sent = [  # (case, contact's role, hours ago)
                ("case-1", "hosting", 80),  # The host had its 72 hours: the upstream is next.
                ("case-2", "hosting", 10),  # Not yet.
                ("case-3", "hosting", 100),  # The upstream had its 48 hours too: the police are next.
                ("case-3", "upstream", 50),
                ("case-4", "hosting", 200),  # Removed: off the ladder.
            ]
            for number, (case_id, role, hours) in enumerate(sent):
                session.add(
                    Notice(
                        id=f"notice-{number}",
                        case_kind="received",
                        case_id=case_id,
                        contact_id=contacts[role].id,
                        recipient=contacts[role].email,
                        language="en",
                        url=f"http://many.example/{case_id}",
                        details={"number": 1},
                        state="sent",
                        created_at=now - dt.timedelta(hours=hours),
                        created_by="analyst",
                        due_at=now - dt.timedelta(hours=hours),
                        sent_at=now - dt.timedelta(hours=hours),
                    )
                )
            session.commit()
            overdue = past_deadline(session, now=now, hours=72, upstream_hours=48)
            assert [(item.case.id, item.step, item.notices) for item in overdue] == [  # The longest waiting first.
                ("case-1", "hosting", 1),
                ("case-3", "upstream", 2),
            ]
            assert past_deadline(session, now=now, hours=72, only=session.get(InboundCase, "case-2")) == []
            renoticed = schedule_renotices(session, now=now)
            assert sorted((n.case_id, n.contact_id, n.details["number"]) for n in renoticed) == [
                ("case-1", "contact-hosting", 2),
                ("case-3", "contact-hosting", 2),
                ("case-3", "contact-upstream", 2),
            ]
    finally:
        engine.dispose()
        postgres.drop_all()
