"""A whole demo network on one machine: the exchange and the member nodes, each a real process."""
