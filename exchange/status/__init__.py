"""Network-wide status: what the secretariat watches, computed from the exchange's own data."""
