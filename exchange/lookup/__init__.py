"""Private lookups: members ask whether a location or its material is known, by fingerprint prefixes."""
