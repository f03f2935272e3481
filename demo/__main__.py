"""``make demo``: start a whole network on localhost, walk one report through it, then keep running.

Press Ctrl-C to stop every process. ``--once`` stops after the walk-through (used by the tests).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import time
from pathlib import Path

from demo.history import seed_history
from demo.hostsim import HostingProvider
from demo.mailsink import MailSink
from demo.network import (
    Layout,
    Network,
    OperatorClient,
    PublicReporter,
    lay_out,
    read_toml,
    register_members,
    staff_token,
    write_toml,
)
from federation.signing import short_id


def _say(text: str) -> None:
    print(text, flush=True)


def walk_through(network: Network, host: HostingProvider) -> None:
    """Report from the Netherlands, hosted in Germany; Germany acts; France reports the same URL later."""
    nl, de, fr = network.client("hotline-nl"), network.client("hotline-de"), network.client("hotline-fr")
    started = time.perf_counter()
    report = nl.report(
        url="http://Example.COM/gallery/../album/1.html#top",
        hosting_country="DE",
        legal_status="baseline",
        priority="urgent",
        content_hashes=[{"alg": "sha256", "value": "ab" * 32}],
    )
    _say(f"1. hotline-nl confirmed report {report['id']} (hosted in DE), fingerprint {report['url_fingerprint'][:16]}…")
    case = de.wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    _say(
        f"2. hotline-de received it from {case['origin']} after {1000 * (time.perf_counter() - started):.0f} ms "
        "(origin's signature verified at the destination)"
    )
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["received_at"] is not None)
    _say("3. hotline-nl got hotline-de's signed receipt")
    host.take_down("http://example.com/album/1.html")  # What hotline-de's notice achieved, at the demo host.
    for status in ("ntd_sent", "removed"):
        response = de.request("POST", f"/api/v1/received/{report['id']}/status", json={"status": status})
        response.raise_for_status()
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "removed")
    _say("4. hotline-de sent 'ntd_sent' then 'removed'; hotline-nl's timeline shows both")
    dup = fr.report(url="http://example.com/album/1.html", hosting_country="DE", legal_status="baseline")
    dup = fr.wait_for(f"/api/v1/reports/{dup['id']}", lambda r: r["state"] == "removed")
    _say(
        f"5. hotline-fr reported the same URL: hotline-de confirmed it is case {dup['duplicate_of']}, "
        "so it joined that case instead of opening a second one; hotline-fr sees it is already removed"
    )


def seed_intake(network: Network) -> None:
    """A few reports from the public (in three languages) and a partner batch, so every queue has rows."""
    layout = network.layout
    for member_id, lang in (("hotline-nl", "nl"), ("hotline-de", "de")):
        reporter = PublicReporter(network.public(member_id), layout.web.ca)
        reporter.report("http://images.example/gallery/?id=4411", lang=lang, seen_on="website")
        reporter.report(
            "https://social.example/p/8812",
            lang=lang,
            seen_on="social_media",
            description="A video of a very young child, posted with a link to more.",
        )
        reporter.report(
            "http://forum.example/t/55#post-3",
            lang="en",
            seen_on="chat",
            contact_email="reporter@mail.example",
            contact_name="R.",
        )
        reporter.close()
        partner = network.partner(member_id)
        result = partner.submit(
            [
                {
                    "url": f"https://media-host.example/{member_id}/a1.jpg",
                    "external_id": "flag-1001",
                    "seen_on": "website",
                },
                {
                    "url": f"https://media-host.example/{member_id}/a2.jpg",
                    "external_id": "flag-1002",
                    "content_hashes": [{"alg": "md5", "value": "0f" * 16}],
                },
                {"url": f"https://media-host.example/{member_id}/a1.jpg", "external_id": "flag-1003"},
                {"url": "javascript:alert(1)", "external_id": "flag-1004"},
            ],
            idempotency_key=f"demo-{member_id}",
        )
        partner.close()
        _say(
            f"6. {member_id}: 3 reports through its public page, and a partner batch "
            f"({result['accepted']} accepted, {result['duplicates']} duplicate, {result['refused']} refused)"
        )


def seed_cases(network: Network) -> None:
    """Move some of hotline-nl's new cases along, as its analysts would, so every queue has something:
    one forwarded abroad, one hosted here, one assessed and ready to route, one assigned to Ana; and one of
    hotline-de's awaiting its supervisor's review (hotline-de asks for four eyes)."""
    nl = network.client("hotline-nl")
    forwarded = nl.case_for("https://social.example/p/8812")["id"]
    nl.act(
        forwarded,
        "assess",
        {
            "legal_status": "baseline",
            "media_type": "video",
            "age_group": "infant_toddler",
            "gender": "female",
            "site_type": "social_networking_site",
            "urgent": True,
            "urgent_reason": "Recent, self-produced, the child may be identifiable.",
            "content_hashes": ["sha256:" + "9e" * 32],
            "notes": "Account posts links to more material.",
        },
    )
    nl.act(forwarded, "trace")
    sent = nl.act(forwarded, "decide", {"decision": "forward"})
    here = nl.case_for("https://media-host.example/hotline-nl/a1.jpg")["id"]
    nl.act(here, "assess", {"legal_status": "nationally_illegal", "media_type": "image", "site_type": "image_host"})
    nl.act(here, "trace")
    nl.act(here, "decide", {"decision": "here"})
    ready = nl.case_for("http://images.example/gallery/?id=4411")["id"]
    nl.act(
        ready,
        "assess",
        {"legal_status": "baseline", "media_type": "image", "age_group": "prepubescent", "site_type": "image_host"},
    )
    nl.act(ready, "trace")
    cdn = nl.case_for("http://forum.example/t/55#post-3")["id"]
    nl.act(cdn, "trace")
    # Sam, hotline-nl's supervisor, gives a case to Ana (with a token of his, as a script of his would).
    nl_spec = network.layout.spec("hotline-nl")
    sam = OperatorClient(
        dataclasses.replace(nl_spec, api_token=staff_token(nl_spec, "sam", "supervisor")), network.layout.web.ca
    )
    sam.act(nl.case_for("https://media-host.example/hotline-nl/a2.jpg")["id"], "assign", {"to": "ana"})
    sam.close()
    de = network.client("hotline-de")
    review = de.case_for("https://social.example/p/8812")["id"]
    de.act(review, "assess", {"legal_status": "baseline", "media_type": "video"})
    _say(
        f"7. hotline-nl's analysts: case {short_id(forwarded)} assessed, traced to FR and forwarded to "
        f"{sent['destination']}; one kept here (hosted in NL); one ready to route; hotline-de's case "
        f"{short_id(review)} awaits its supervisor's review"
    )


def seed_notices(network: Network, sink: MailSink, host: HostingProvider) -> None:
    """hotline-de's directory of abuse contacts, and a notice for a case hotline-nl sends it: the worker
    mails it to the demo's mail sink, and "notice sent" travels back to hotline-nl."""
    de_spec = network.layout.spec("hotline-de")
    sam = OperatorClient(
        dataclasses.replace(de_spec, api_token=staff_token(de_spec, "sam", "supervisor")), network.layout.web.ca
    )
    contacts = {}
    for contact in (
        {
            "name": "Example Hosting GmbH",
            "email": "abuse@hosting.example",
            "networks": "192.0.2.0/24",
            "asns": "AS64501",
            "language": "de",
        },
        {"name": "Example CDN Inc.", "email": "abuse@cdn.example", "networks": "203.0.113.0/24", "language": "en"},
        {
            "name": "Landeskriminalamt (demo)",
            "role": "police",
            "email": "cybercrime@police.example",
            "country": "DE",
            "language": "de",
        },
    ):
        made = sam.request("POST", "/api/v1/contacts", json=contact)
        made.raise_for_status()
        contacts[contact["name"]] = made.json()["id"]
    sam.close()
    nl, de = network.client("hotline-nl"), network.client("hotline-de")
    report = nl.report(
        url="http://images.example/album/77/photo-3.jpg",
        hosting_country="DE",
        legal_status="baseline",
        media_type="image",
        content_hashes=[{"alg": "sha256", "value": "c7" * 32}],
    )
    de.wait_for(f"/api/v1/received/{report['id']}", lambda c: True)
    suggested = de.get(f"/api/v1/received/{report['id']}/contacts")["items"][0]
    queued = de.request("POST", f"/api/v1/received/{report['id']}/notices", json={"contact_id": suggested["id"]})
    queued.raise_for_status()
    de.wait_for(f"/api/v1/received/{report['id']}/notices", lambda body: body["items"][0]["state"] == "sent")
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "ntd_sent")
    _say(
        f"8. hotline-de sent a notice to {suggested['name']} (suggested: {suggested['why']}); the message is in "
        f"{sink.messages()[-1]}, and hotline-nl's report shows 'notice sent'"
    )
    host.take_down("http://images.example/album/77/photo-3.jpg")
    de.request("POST", f"/api/v1/received/{report['id']}/checks", json={"check_now": True}).raise_for_status()
    nl.wait_for(f"/api/v1/reports/{report['id']}", lambda r: r["state"] == "removed", timeout=30)
    _say(
        "9. the demo's hosting provider took it down: hotline-de's removal check found it gone (HTTP 404) and "
        "recorded 'removed', which hotline-nl sees"
    )


def print_guide(layout: Layout, host: HostingProvider) -> None:
    _say("\nRunning (every surface of every service is its own process):")
    for spec in layout.services():
        where = ", ".join(spec.countries) or ("fallback" if spec.fallback else "")
        _say(f"  {spec.member_id:<12} {where}")
        _say(f"    console   {spec.console_url}/")
        if spec.kind == "node":
            _say(f"    public    {spec.public_url}/  (reporting page; partner API {spec.public_url}/openapi.json)")
            if spec.partner:
                _say(f"    partner   client id {spec.partner['client_id']}  secret {spec.partner['client_secret']}")
        if "network" in spec.all_surfaces:
            _say(f"    network   {spec.url}  (mutual TLS)")
        for account in spec.accounts:
            extra = f"  TOTP secret {account['totp_secret']}" if account.get("totp_secret") else ""
            _say(f"    sign in as {account['username']:<4} ({account['role']}) password {account['password']}{extra}")
    _say(
        "\nThe consoles use a throwaway certificate: trust "
        f"{layout.web.ca} in your browser, or accept the warning (demo only)."
    )
    _say(
        "For the second factor, add the TOTP secret to an authenticator app, or run:\n"
        '  .venv/bin/python -c "import pyotp,sys; print(pyotp.TOTP(sys.argv[1]).now())" SECRET'
    )
    _say(f"\nNetwork description (URLs, accounts, certificates): {layout.root / 'network.json'}")
    _say(f"Logs: {layout.root / 'logs'}")
    _say(f"Mail the nodes send (notices), as .eml files: {layout.root / 'mail'}")
    _say(f"The demo's hosting provider (take content down, watch the removal checks): {host.url}/")
    _say("Press Ctrl-C to stop.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotline-demo", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("var/demo"), help="Where to put PKI, configs, databases.")
    parser.add_argument("--once", action="store_true", help="Stop after the walk-through.")
    args = parser.parse_args(argv)
    _say("Generating a throwaway PKI and configs…")
    layout = lay_out(args.root)
    de = layout.spec("hotline-de")
    write_toml(de.config, {**read_toml(de.config), "FOUR_EYES_REVIEW": True})
    sink = MailSink(args.root / "mail")
    host = HostingProvider()
    for spec in layout.members.values():
        demo_parts = {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": sink.port,
            "NOTICE_FROM": f"abuse-desk@{spec.member_id}.example",
            "NOTICE_SECONDS": 1,
            "NOTICE_GROUP_SECONDS": 2,
            # Removal checks go through the demo's hosting provider (a proxy on 127.0.0.1): nothing leaves.
            "REMOVAL_CHECK_ENABLED": True,
            "REMOVAL_CHECK_PROXY": host.url,
            "REMOVAL_CHECK_SECONDS": 1,
            "REMOVAL_CHECK_EVERY_SECONDS": 5,
            "REMOVAL_RECHECK_EVERY_SECONDS": 30,
        }
        write_toml(spec.config, {**read_toml(spec.config), **demo_parts})
    register_members(layout, demo_accounts=True)
    _say(f"Wrote {seed_history(layout):,} cases of synthetic history (12 months) into the exchange's network status.")
    network = Network(layout)
    stopping = False

    def _interrupt(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        network.start_all_surfaces()
        _say(f"Started the exchange and {len(layout.members)} member nodes, every surface in its own process.\n")
        walk_through(network, host)
        seed_intake(network)
        seed_cases(network)
        seed_notices(network, sink, host)
        print_guide(layout, host)
        if not args.once:
            while not stopping:
                time.sleep(0.2)
    except Exception as exc:
        _say(f"demo failed: {exc}")
        for log in sorted((layout.root / "logs").glob("*.log")):
            _say(f"--- {log.name} (last lines) ---\n" + "".join(log.read_text().splitlines(True)[-15:]))
        return 1
    finally:
        _say("Stopping…")
        network.stop()
        sink.close()
        host.close()
    _say(json.dumps({"stopped": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
