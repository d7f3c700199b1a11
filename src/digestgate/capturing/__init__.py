"""The capture verb: record the digests of built images in a release file."""
