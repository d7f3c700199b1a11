"""The registry client: the only HTTP code in digestgate (OCI distribution-spec 1.1)."""
