"""Outgoing reports: confirmed here, forwarded through the exchange, followed until the content is gone."""
