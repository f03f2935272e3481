"""Staff accounts of the node (shapes and rules in the people package)."""
