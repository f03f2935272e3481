"""The node's audit tables (audit.models)."""

from __future__ import annotations

from audit.models import AuditCheckpointMixin, AuditEntryMixin, AuditHeadMixin
from audit.services import AuditModels
from node.db import db


class AuditEntry(AuditEntryMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "audit_entries"


class AuditHead(AuditHeadMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "audit_head"


class AuditCheckpoint(AuditCheckpointMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "audit_checkpoints"


AUDIT = AuditModels(entry=AuditEntry, head=AuditHead, checkpoint=AuditCheckpoint)
