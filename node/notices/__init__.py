"""Notice and takedown: the abuse contacts a supervisor keeps, the notice templates, and the notices the
worker sends by email with an X-ARF attachment."""
