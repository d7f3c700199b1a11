"""The promote and drift verbs: copy the gated bytes, carry their evidence, set tags."""
