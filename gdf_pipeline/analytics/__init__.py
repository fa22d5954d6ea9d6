"""For analysts and operators: the read-only analytics copy, freshness, and the status report."""
