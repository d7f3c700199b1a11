"""The attest verbs: sign build provenance and lane results bound to the release digests."""
