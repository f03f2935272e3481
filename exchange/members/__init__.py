"""The member directory: who is in the network, which countries each covers, where to deliver."""
