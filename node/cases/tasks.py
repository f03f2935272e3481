"""The cases' scheduled work: triage of new cases before anyone opens them."""

from __future__ import annotations

from flask import Flask

from node.cases.triage import triage, untriaged
from service.worker import Task

MAX_ROUNDS = 50


def triage_new_cases(app: Flask) -> int:
    """Ask the network (privately, by prefixes) about new cases nobody has triaged yet; returns how many.

    A dozen cases per lookup, up to fifty lookups per run, so a partner's batch of a thousand is triaged
    within a couple of runs while one run never holds the worker for long.
    """
    rt = app.extensions["hotline"]
    session = rt.db.session
    done = 0
    for _ in range(MAX_ROUNDS):
        cases = untriaged(session)
        session.commit()  # No transaction stays open across the network call.
        if not cases:
            break
        triage(
            rt,
            session,
            cases,
            exchange_id=app.config["EXCHANGE_ID"],
            exchange_url=app.config["EXCHANGE_URL"],
            now=rt.clock(),
        )
        session.commit()
        done += len(cases)
    return done


TASKS = [Task("triage", triage_new_cases, seconds_key="TRIAGE_SECONDS", help=triage_new_cases.__doc__ or "")]
