"""The audit trail: every staff action and every routing decision, in a tamper-evident chain.

Both services keep one; each maps the shapes in :mod:`audit.models` onto its own database.
"""
