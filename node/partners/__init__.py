"""Partners: platforms and trusted flaggers that report through the node's API (OAuth2 client credentials)."""
