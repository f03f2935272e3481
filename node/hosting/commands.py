"""``hotline-node hosting``: try the hosting trace as configured, and keep the CDN ranges current."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
from flask import current_app

from service.cli import with_app


@click.group("hosting")
def hosting_group() -> None:
    """The hosting trace: where a reported URL's addresses are, and which are a CDN's."""


@hosting_group.command("trace")
@click.argument("url")
@with_app("worker")
def trace_command(url: str) -> None:
    """Trace URL with this node's configured resolver, databases and CDN ranges (prints JSON).

    Resolves the host's name and looks its addresses up in files on disk; the URL itself is never opened.
    """
    from federation.canonical import InvalidURLError, canonicalize_url
    from node.hosting.services import tools, trace

    try:
        canonical = canonicalize_url(url)
    except InvalidURLError as exc:
        raise click.BadParameter(exc.message, param_hint="URL") from None
    result = trace(canonical, tools(current_app), now=dt.datetime.now(dt.UTC))
    click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))


@hosting_group.command("cdn-ranges")
@click.option("--provider", required=True, help="The provider's name, e.g. Cloudflare.")
@click.option(
    "--kind",
    type=click.Choice(["plain", "fastly", "aws-cloudfront"]),
    required=True,
    help="The list's format: plain (one range per line), fastly (its JSON), aws-cloudfront (ip-ranges.json).",
)
@click.option(
    "--from",
    "sources",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    required=True,
    help="The downloaded list (repeat for a provider's IPv4 and IPv6 files).",
)
@click.option(
    "--into",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The node's CDN_RANGES_FILE; made from the packaged list when it does not exist yet.",
)
@click.option("--guidance", default=None, help="What an analyst should do about this provider (for a new one).")
def cdn_ranges_command(provider: str, kind: str, sources: tuple[Path, ...], into: Path, guidance: str | None) -> None:
    """Replace one provider's ranges in the node's CDN list from the list the provider publishes.

    Download the list yourself (the service never fetches it), e.g. https://www.cloudflare.com/ips-v4 and
    ips-v6, https://api.fastly.com/public-ip-list, https://ip-ranges.amazonaws.com/ip-ranges.json; the
    file is rewritten atomically, and the workers pick it up when they restart.
    """
    from node.hosting.cdn import PACKAGED, CDNRanges, ranges_from_published, replace_provider

    ranges: list[str] = []
    for source in sources:
        try:
            ranges += ranges_from_published(kind, source.read_text(encoding="utf-8"))
        except (ValueError, KeyError, TypeError) as exc:
            raise click.BadParameter(f"{source}: {exc}", param_hint="--from") from None
    document = json.loads((into if into.exists() else PACKAGED).read_text(encoding="utf-8"))
    try:
        updated = replace_provider(
            document,
            name=provider,
            ranges=sorted(set(ranges)),
            source=", ".join(s.name for s in sources),
            guidance=guidance,
            today=dt.date.today(),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    CDNRanges(updated, path=into)  # Refuse to write a list the service could not load.
    temporary = into.with_name(into.name + ".tmp")
    temporary.write_text(json.dumps(updated, indent=1) + "\n", encoding="utf-8")
    temporary.replace(into)
    click.echo(f"{into}: {provider} now has {len(set(ranges))} ranges (list dated {updated['updated']})")
