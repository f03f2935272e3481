"""What every party on the network shares: messages, signing, verification, transport and delivery.

Both the exchange and the member nodes import these modules; nothing here knows which of the two it
runs in. The wire contract they implement is docs/protocol.md.
"""
