"""The node's database handle (bound to an app by :func:`node.create_app`)."""

from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
