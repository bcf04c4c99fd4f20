"""Tamper-evident exchange record log (情報提供等記録): RFC 9162 Merkle tree, signed checkpoints, verification."""

from publicmesh.audit.appender import AsyncAuditAppender
from publicmesh.audit.checkpoint import Checkpoint
from publicmesh.audit.cosignature import Cosignature
from publicmesh.audit.keys import load_audit_public_key, load_or_create_audit_key
from publicmesh.audit.log import AuditLog, verify_store
from publicmesh.audit.merkle import CompactRange
from publicmesh.audit.proofs import PerfectSubtrees
from publicmesh.audit.records import ExchangeRecord, canonical_bytes, utc_timestamp
from publicmesh.audit.verify import Problem, VerificationReport

__all__ = [
    "AsyncAuditAppender",
    "AuditLog",
    "Checkpoint",
    "CompactRange",
    "Cosignature",
    "ExchangeRecord",
    "PerfectSubtrees",
    "Problem",
    "VerificationReport",
    "canonical_bytes",
    "load_audit_public_key",
    "load_or_create_audit_key",
    "utc_timestamp",
    "verify_store",
]
