"""Staff accounts of the exchange (shapes and rules in the people package)."""
