"""Pure gate evaluation: (policy, release, verified evidence, now) -> decision + findings."""
