"""``digestgate policy digest``: the policy's identity, what deployments pin."""

from __future__ import annotations

from pathlib import Path

import click

from digestgate.cli.options import policy_option
from digestgate.cli.output import console


@click.group("policy")
def command() -> None:
    """Inspect a policy."""


@command.command("digest")
@policy_option("The policy.yaml (its keys are read from beside it).")
@click.pass_context
def digest(ctx: click.Context, policy_path: Path) -> None:
    """Print the policy digest: sha256 over the policy bytes and every trusted key by name.

    This is the digest VSAs name and `digestgate verify --policy-digest` pins. It changes
    when the policy text, a key file, or the name a key is bound to changes.
    """
    from digestgate.policy import load_policy

    out = console(ctx)
    policy = load_policy(policy_path)
    for name, key in sorted(policy.keys.items()):
        out.detail(f"key {name}: {key.keyid} ({key.origin})")
    out.out(str(policy.digest))
