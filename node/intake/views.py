"""The public surface's pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from service.policies import Public, policy

pages = Blueprint("intake", __name__, template_folder="templates")


@pages.get("/")
@policy(Public("the public reporting page is for anyone"))
def start() -> Any:
    return render_template("intake/start.html")
