"""OCI content: media types, descriptors, manifests and indexes, and image stores."""
