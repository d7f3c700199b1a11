"""read_capped: regular files only (a FIFO, device or directory never hangs), capped reads."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from digestgate.errors import ConfigError, ExitCode
from digestgate.fileread import read_capped
from tests.fixtures.deadline import within


def test_regular_file_is_read_up_to_one_byte_over_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    assert read_capped(path, 100, what="file") == b"0123456789"
    assert read_capped(path, 10, what="file") == b"0123456789"
    assert read_capped(path, 4, what="file") == b"01234"  # longer than the cap: refused upstream


def test_symlink_to_a_regular_file_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"key")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert read_capped(tmp_path / "link", 10, what="file") == b"key"


def test_fifo_without_a_writer_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    started = time.monotonic()
    with within(5), pytest.raises(ConfigError) as caught:
        read_capped(fifo, 1024, what="policy file")
    assert time.monotonic() - started < 2
    assert caught.value.message == f"policy file {fifo} is a FIFO (named pipe), not a regular file"
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.hint == "pass the path of a regular file"


def test_symlink_to_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "key.pem").symlink_to(tmp_path / "pipe")
    with within(5), pytest.raises(ConfigError, match="is a FIFO"):
        read_capped(tmp_path / "key.pem", 1024, what="private key file")


@pytest.mark.parametrize(
    ("path", "kind"), [("/dev/zero", "a character device"), ("/dev/null", "a character device")]
)
def test_devices_are_refused_without_reading(path: str, kind: str) -> None:
    with within(5), pytest.raises(ConfigError, match=f"is {kind}, not a regular file"):
        read_capped(Path(path), 1024, what="JUnit report")


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory, not a regular file"):
        read_capped(tmp_path, 1024, what="release file")


def test_missing_file_stays_an_os_error_for_the_caller(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_capped(tmp_path / "absent", 1024, what="tag plan")


def test_nul_in_a_path_is_a_config_error_not_a_crash(tmp_path: Path) -> None:
    # os.open raises ValueError (not OSError) for an embedded NUL: a policy key path can hold one.
    with pytest.raises(ConfigError) as caught:
        read_capped(tmp_path / "key\x00.pub", 1024, what="public key file")
    assert "contains a NUL character" in caught.value.message
    assert caught.value.exit_code == ExitCode.USAGE
