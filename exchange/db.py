"""The exchange's database handle (bound to an app by :func:`exchange.create_app`)."""

from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
