"""Removal checks: whether a reported address still answers, recorded without ever reading its content."""
