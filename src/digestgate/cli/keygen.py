"""``digestgate keygen``: write PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import click

from digestgate.cli.output import console
from digestgate.errors import UsageError
from digestgate.evidence.keys import PASSWORD_ENV, generate_keypair


def _write_atomic(path: Path, data: bytes, mode: int, *, force: bool) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory.

    Without ``force`` the final step is a hard link, which fails if ``path`` appeared in the
    meantime, so an existing key is never replaced.
    """
    directory = path.parent
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise UsageError(
            f"cannot write in {directory}: {exc.strerror or exc}",
            hint="choose an --out in a directory you can write",
        ) from exc
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            tmp.replace(path)
        else:
            os.link(tmp, path)
    except FileExistsError:
        raise UsageError(
            f"{path} already exists", hint="choose another --out or pass --force to replace it"
        ) from None
    except OSError as exc:
        raise UsageError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="choose an --out in a directory you can write",
        ) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@click.command(name="keygen")
@click.option(
    "--out",
    "prefix",
    required=True,
    metavar="PREFIX",
    help="Write PREFIX.key and PREFIX.pub.",
)
@click.option(
    "--kind",
    type=click.Choice(["ed25519", "ecdsa-p256"]),
    default="ed25519",
    show_default=True,
    help="Key algorithm.",
)
@click.option("--force", is_flag=True, help="Replace existing key files.")
@click.pass_context
def command(ctx: click.Context, prefix: str, kind: str, force: bool) -> None:
    """Generate a signing key pair and print its key id.

    The private key is encrypted when DIGESTGATE_KEY_PASSWORD is set.
    """
    out = console(ctx)
    if not prefix or prefix.endswith("/") or Path(prefix).name in ("", ".", ".."):
        raise UsageError(
            f"--out {prefix[:200]!r} names no file prefix",
            hint="pass --out DIR/NAME, e.g. --out keys/build (writes build.key and build.pub)",
        )
    key_path = Path(prefix + ".key")
    pub_path = Path(prefix + ".pub")
    if not key_path.parent.is_dir():
        try:  # private keys live here: readable by the owner only
            key_path.parent.mkdir(mode=0o700, parents=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create directory {key_path.parent}: {exc.strerror or exc}",
                hint="create it or choose another --out",
            ) from exc
    if not force:
        for path in (key_path, pub_path):
            if path.exists():
                raise UsageError(
                    f"{path} already exists",
                    hint="choose another --out or pass --force to replace it",
                )
    password = os.environ.get(PASSWORD_ENV) or None
    if PASSWORD_ENV in os.environ and not password:
        out.warn(f"{PASSWORD_ENV} is empty: the private key is written unencrypted")
    pair = generate_keypair(
        "ecdsa-p256" if kind == "ecdsa-p256" else "ed25519", password.encode() if password else None
    )
    _write_atomic(key_path, pair.private_pem, 0o600, force=force)
    try:
        _write_atomic(pub_path, pair.public_pem, 0o644, force=force)
    except BaseException:
        key_path.unlink(missing_ok=True)  # never leave a private key without its public key
        raise
    state = "encrypted" if password else "unencrypted"
    out.info(f"wrote {key_path} ({kind}, {state}, mode 0600) and {pub_path}")
    out.out(pair.keyid)
