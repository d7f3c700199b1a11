"""Evidence: in-toto statements in DSSE envelopes, their predicates, keys and signing."""
