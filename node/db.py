"""The node's database handle (bound to an app by :func:`node.create_app`)."""

from service.database import new_database

db = new_database()
