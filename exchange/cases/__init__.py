"""Cases: one per piece of content, opened by the first report of it, with every duplicate linked."""
