"""Routing: which member receives a report, by the hosting country in its routing header."""
