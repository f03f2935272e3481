"""The node's audit trail (the chain and its rules live in the audit package)."""
