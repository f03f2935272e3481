"""The network's own public key infrastructure: a network CA, member and exchange certificates, revocation.

``certs.identity`` reads who a certificate belongs to; ``certs.authority`` is what the secretariat runs to
issue and revoke; ``certs.devnet`` makes a throwaway PKI for the demo and the tests.
"""
