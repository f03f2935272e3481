"""Network status: a member's own health on the network surface; the whole picture in the console.

The full figures (every member's health, refusals, the tables behind the charts) are for the secretariat:
the dashboard (``/``), its CSV exports (``/status/<table>.csv``), the annual summary (``/summary/<year>``)
and the console API (``GET /api/v1/status``, with a session or a personal API token), all with the same
filters in the query string and all computed by ``network_status``. A member reads only its own entry,
with its certificate, at ``GET /v1/status``. Nothing here changes anything: every route is a GET.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request, url_for

from console import csv_safe, problem
from exchange.members.certificates import expiring
from exchange.status.filters import FIELDS, LEGAL_STATUSES, FilterError, Filters, parse_filters, year_filters
from exchange.status.services import member_entry, network_status, years_with_cases
from federation.runtime import runtime
from federation.web import PeerCertificate, current_peer
from people.sessions import StaffAccess
from service.policies import policy

SECRETARIAT = ("secretariat-viewer", "secretariat-admin")
CHART_LIBRARY = Path(__file__).resolve().parents[2] / "console" / "static" / "vendor" / "chart.umd.min.js"
"""Chart.js, installed from the npm registry by ``make install`` (never committed, never from a CDN)."""

network = Blueprint("status", __name__)
console_api = Blueprint("status_api", __name__)
pages = Blueprint("dashboard", __name__, template_folder="templates")


@network.get("/v1/status")
@policy(PeerCertificate(roles=("member",)))
def own_status() -> Any:
    """A member's own entry: its queue at the exchange, its last contact, its certificate's expiry."""
    rt = runtime()
    return jsonify(member_entry(rt.db.session, current_peer().member_id, now=rt.clock()))


@console_api.get("/api/v1/status")
@policy(StaffAccess(roles=SECRETARIAT, api=True, tokens=True))
def status() -> Any:
    """Network-wide status for the filters in the query string (counts and member health; no URLs)."""
    try:
        filters = parse_filters(request.args)
    except FilterError as error:
        return problem(400, error.code, error.message, errors=error.errors)
    rt = runtime()
    return jsonify(network_status(rt.db.session, now=rt.clock(), filters=filters))


def _page_context(filters: Filters | None, errors: dict[str, str]) -> dict[str, Any]:
    rt = runtime()
    figures = network_status(rt.db.session, now=rt.clock(), filters=filters or Filters())
    return {
        "figures": figures,
        "filters": filters or Filters(),
        "values": {name: request.args.get(name, "") for name in FIELDS},
        "errors": errors,
        "legal_statuses": LEGAL_STATUSES,
        "years": years_with_cases(rt.db.session),
        "charts": CHART_LIBRARY.exists(),
        "expiring": expiring(rt.db.session, now=rt.clock(), within=dt.timedelta(days=30)),
        "now": rt.clock(),
    }


@pages.get("/")
@policy(StaffAccess(roles=SECRETARIAT))
def home() -> Any:
    """The dashboard; a filter that cannot be used is shown next to its field, with the unfiltered figures."""
    try:
        filters, errors = parse_filters(request.args), {}
    except FilterError as error:
        filters, errors = None, error.errors
    return render_template("status/home.html", **_page_context(filters, errors)), 400 if errors else 200


def _rows_months(figures: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = ["month", "cases", "removed", "judged", "removed_within_3_days", "share_removed_within_3_days"]
    header += ["judged_police", "police_within_3_days", "share_police_within_3_days"]
    return header, [[row[name] for name in header] for row in figures["months"]]


def _breakdown(table: str, key: str, label: str) -> Callable[[dict[str, Any]], tuple[list[str], list[list[Any]]]]:
    def rows(figures: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        names = ["cases", "removed", "judged", "removed_within_3_days", "share_removed_within_3_days"]
        names += ["judged_police", "police_within_3_days", "share_police_within_3_days"]
        return [label, *names], [[row[key], *(row[name] for name in names)] for row in figures[table]]

    return rows


def _rows_members(figures: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    health = ["status", "backlog", "oldest_undelivered", "failing_deliveries", "dead_letters", "last_contact"]
    health += ["certificate_expires"]
    content = ["cases", "judged", "removed_within_3_days", "share_removed_within_3_days", "median_hours_to_removal"]
    header = ["member", *health, *content]
    out = []
    for member_id, entry in figures["members"].items():
        out.append(
            [member_id]
            + [entry.get(name) for name in health]
            + [entry.get("content", {}).get(name) for name in content]
        )
    return header, out


def _rows_summary(figures: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    names = ["total", "duplicates_avoided", "removed", "judged", "removed_within_3_days", "share_removed_within_3_days"]
    names += ["median_hours_to_removal", "judged_police", "police_within_3_days", "share_police_within_3_days"]
    names += ["removed_after_notice", "median_hours_notice_to_removal"]
    return ["figure", "value"], [[name, figures["cases"][name]] for name in names]


EXPORTS: dict[str, Callable[[dict[str, Any]], tuple[list[str], list[list[Any]]]]] = {
    "summary": _rows_summary,
    "months": _rows_months,
    "countries": _breakdown("countries", "country", "hosting_country"),
    "origins": _breakdown("origins", "origin", "origin"),
    "legal-statuses": _breakdown("legal_statuses", "legal_status", "legal_status"),
    "members": _rows_members,
}
"""Every table of the dashboard, as CSV (``/status/<name>.csv``) with the dashboard's filters."""

EXPORT_TABLES = {
    "summary": ("cases",),
    "months": ("months",),
    "countries": ("countries",),
    "origins": ("origins",),
    "legal-statuses": ("legal_statuses",),
    "members": ("members",),
}
"""The parts of the network status each export needs (the others are not computed)."""


@pages.get("/status/<name>.csv")
@policy(StaffAccess(roles=SECRETARIAT))
def export(name: str) -> Any:
    """One of the dashboard's tables as CSV, with the same filters (named in the file name)."""
    if name not in EXPORTS:
        abort(404)
    try:
        filters = parse_filters(request.args)
    except FilterError as error:
        return problem(400, error.code, error.message, errors=error.errors)
    rt = runtime()
    figures = network_status(rt.db.session, now=rt.clock(), filters=filters, tables=EXPORT_TABLES[name])
    header, rows = EXPORTS[name](figures)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[csv_safe(value) for value in row] for row in rows])
    suffix = "".join(f"_{key}-{value}" for key, value in sorted(filters.args().items()))
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=network-{name}{suffix}.csv"},
    )


@pages.get("/summary")
@policy(StaffAccess(roles=SECRETARIAT))
def summary_latest() -> Any:
    """The annual summary of the latest complete year (or of this year, before one has ended)."""
    rt = runtime()
    years = years_with_cases(rt.db.session)
    this_year = rt.clock().year
    done = [year for year in years if year < this_year]
    return redirect(url_for("dashboard.summary", year=(done or years or [this_year])[0]))


@pages.get("/summary/<int:year>")
@policy(StaffAccess(roles=SECRETARIAT))
def summary(year: int) -> Any:
    """The figures the network publishes for one calendar year, on a page that prints."""
    if not 2000 <= year <= 2100:
        abort(404)
    rt = runtime()
    filters = year_filters(year)
    figures = network_status(rt.db.session, now=rt.clock(), filters=filters)
    return render_template(
        "status/summary.html",
        figures=figures,
        year=year,
        filters=filters,
        years=years_with_cases(rt.db.session),
        complete=year < rt.clock().year,
        charts=CHART_LIBRARY.exists(),
    )
