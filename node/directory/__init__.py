"""The member directory as this node knows it: fetched signed from the exchange, cached, used to authorize."""
