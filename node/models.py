"""Every table of the node, imported in one place so that each surface, the migrations and the drift
check see the whole schema (a surface that uses few tables still checks that the database is current)."""

from node.accounts.models import Account, ApiToken
from node.audit.models import AUDIT
from node.cases.models import Case, CaseHash
from node.intake.models import IdempotentRequest, Submission
from node.messaging.models import MODELS
from node.notices.models import AbuseContact, Notice, NoticeTemplate
from node.partners.models import Partner, PartnerToken
from node.received.models import CaseEvent, InboundCase, InboundReport
from node.referrals.models import Referral
from node.removal.models import Check, Watch
from node.reports.models import Report

__all__ = [
    "AUDIT",
    "MODELS",
    "AbuseContact",
    "Account",
    "ApiToken",
    "Case",
    "CaseEvent",
    "CaseHash",
    "Check",
    "IdempotentRequest",
    "InboundCase",
    "InboundReport",
    "Notice",
    "NoticeTemplate",
    "Partner",
    "PartnerToken",
    "Referral",
    "Report",
    "Submission",
    "Watch",
]
