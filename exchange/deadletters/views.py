"""The dead-letters page: what the exchange could not deliver and why, and (admins) re-queue or close it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from console import page_number, paginate
from exchange.deadletters.services import DeadLetterDesk, open_letters, settled_letters
from federation.errors import ProtocolError
from federation.messages import schema_name
from federation.runtime import runtime
from people.forms import ConfirmForm
from people.sessions import StaffAccess, current_principal
from service.policies import policy

SECRETARIAT = StaffAccess(roles=("secretariat-viewer", "secretariat-admin"))
ADMIN = StaffAccess(roles=("secretariat-admin",))

pages = Blueprint("deadletters", __name__, template_folder="templates")


@pages.get("/dead-letters")
@policy(SECRETARIAT)
def index() -> Any:
    rt = runtime()
    destination = request.args.get("destination", "").strip()[:64]
    number, size = page_number()
    page = paginate(
        rt.db.session, open_letters(rt.db.session, destination=destination or None), number=number, size=size
    )
    return render_template(
        "deadletters/index.html",
        page=page,
        settled=settled_letters(rt.db.session),
        destination=destination,
        kind=schema_name,
        confirm=ConfirmForm(),
    )


@pages.post("/dead-letters/<int:outbox_id>")
@policy(ADMIN)
def act(outbox_id: int) -> Any:
    if not ConfirmForm().validate_on_submit():
        flash("The form expired: try again.", "error")
        return redirect(url_for("deadletters.index"))
    rt = runtime()
    desk = DeadLetterDesk(rt.db.session, rt.signer, actor=current_principal().actor, now=rt.clock())
    action, reason = request.form.get("action"), request.form.get("reason", "")
    try:
        if action == "requeue":
            to = desk.requeue(outbox_id, reason=reason)
            message = f"Dead letter {outbox_id} re-queued for {to}."
        elif action == "close":
            desk.close(outbox_id, reason=reason)
            message = f"Dead letter {outbox_id} closed; its document was erased."
        else:
            raise ProtocolError("choose re-queue or close", code="invalid_action", status=422)
    except ProtocolError as exc:
        rt.db.session.rollback()
        flash(f"Dead letter {outbox_id}: {exc.message}", "error")
        return redirect(url_for("deadletters.index") + f"#letter-{outbox_id}")
    rt.db.session.commit()
    flash(message, "success")
    return redirect(url_for("deadletters.index"))
