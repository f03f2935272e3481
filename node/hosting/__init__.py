"""The hosting trace: host name → addresses → country and network, with content delivery networks flagged."""
