"""Intake: where reports start. The public reporting page and the partner API (the public surface)."""
