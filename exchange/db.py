"""The exchange's database handle (bound to an app by :func:`exchange.create_app`)."""

from service.database import new_database

db = new_database()
