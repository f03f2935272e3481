"""This hotline's own cases: one per location reported to it, from intake to its routing decision."""
