"""What the HTTP service trusts and limits, with safe defaults."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.errors import LookalikeError

MEGABYTE = 1 << 20
# The Host header values a service bound to loopback answers (DNS rebinding sends another name).
LOOPBACK_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
ANY_HOST = "*"


@dataclass(frozen=True)
class ServerConfig:
    """Settings for `create_app`; `from_environment` reads the LOOKALIKE_* variables."""

    index_url: str | None = None
    api_keys: tuple[str, ...] = ()
    public_reads: bool = True  # read endpoints open without a key (the default host is loopback)
    max_upload_bytes: int = 20 * MEGABYTE
    max_json_bytes: int = 8 * MEGABYTE  # hash lists posted to banks
    max_pixels: int = 50_000_000
    # Memory an upload's decoded pixels may take (pixels x bytes a pixel: 4 for RGB, 2 for 16-bit),
    # checked before decoding: with the working copies, a request stays under ~300 MB.
    max_image_bytes: int = 100 * MEGABYTE
    body_timeout_seconds: float = 60.0  # the whole body must have arrived by then (else 408)
    banks_dir: str | None = None
    thumbnails_from_paths: bool = False  # let the page show thumbnails of files indexed by path
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS  # Host header names answered; "*" for any
    generated_key: bool = field(default=False, compare=False)

    @classmethod
    def from_environment(
        cls, key_file: str | os.PathLike[str] | None = None, **overrides: object
    ) -> ServerConfig:
        """Keys from LOOKALIKE_API_KEY (comma-separated), the file LOOKALIKE_API_KEY_FILE and
        `key_file`, all of them together; if none is set a random key is generated (and printed
        by `lookalike serve`)."""
        files = [os.environ.get("LOOKALIKE_API_KEY_FILE"), key_file]
        keys = read_keys(os.environ.get("LOOKALIKE_API_KEY"), [f for f in files if f])
        generated = False
        if not keys and not overrides.get("api_keys"):
            keys = (secrets.token_urlsafe(24),)
            generated = True
        values: dict[str, object] = {
            "index_url": os.environ.get("LOOKALIKE_INDEX"),
            "api_keys": keys,
            "public_reads": os.environ.get("LOOKALIKE_PUBLIC_READS", "1") not in ("0", "false", "no"),
            "generated_key": generated,
        }
        if "LOOKALIKE_MAX_UPLOAD_MB" in os.environ:
            values["max_upload_bytes"] = int(float(os.environ["LOOKALIKE_MAX_UPLOAD_MB"]) * MEGABYTE)
        if "LOOKALIKE_MAX_IMAGE_MB" in os.environ:
            values["max_image_bytes"] = int(float(os.environ["LOOKALIKE_MAX_IMAGE_MB"]) * MEGABYTE)
        if os.environ.get("LOOKALIKE_BANKS_DIR"):
            values["banks_dir"] = os.environ["LOOKALIKE_BANKS_DIR"]
        if os.environ.get("LOOKALIKE_THUMBNAILS_FROM_PATHS", "0") not in ("0", "false", "no"):
            values["thumbnails_from_paths"] = True
        if os.environ.get("LOOKALIKE_ALLOWED_HOSTS"):
            values["allowed_hosts"] = parse_hosts(os.environ["LOOKALIKE_ALLOWED_HOSTS"].split(","))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def read_keys(value: str | None, key_files: Iterable[str | os.PathLike[str]] = ()) -> tuple[str, ...]:
    """API keys from a comma-separated value and from files with one key per line (blank lines and
    lines starting with `#`, after leading spaces, are skipped). A file without a key is an error:
    it would otherwise leave the service with no usable key, or a generated one nobody expects."""
    keys = [k.strip() for k in (value or "").split(",") if k.strip()]
    for key_file in key_files:
        try:
            text = Path(key_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise LookalikeError(f"{key_file}: cannot read the API key file ({reason})") from None
        found = [line.strip() for line in text.splitlines()]
        found = [line for line in found if line and not line.startswith("#")]
        if not found:
            raise LookalikeError(
                f"{key_file}: no API key in the file (one key per line; lines starting with # are comments)"
            )
        keys += found
    for key in keys:
        if len(key) < 16:
            raise LookalikeError("API keys must be at least 16 characters long")
        if "," in key or any(character.isspace() for character in key):
            raise LookalikeError("API keys cannot contain commas or spaces")
    return tuple(dict.fromkeys(keys))


def parse_hosts(names: Iterable[str]) -> tuple[str, ...]:
    """Host names as the Host header gives them (lowercase, IPv6 without brackets)."""
    hosts = []
    for name in names:
        host = name.strip().lower()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if host:
            hosts.append(host)
    if not hosts:
        raise LookalikeError("--allowed-host needs at least one host name (or * for any)")
    return tuple(dict.fromkeys(hosts))


def default_hosts(bind_host: str) -> tuple[str, ...]:
    """The Host names answered by default: loopback names when bound to loopback (a browser page
    on another site cannot then rebind a name of its own to this port), else any."""
    if bind_host.strip("[]").lower() == "localhost":
        return LOOPBACK_HOSTS
    try:
        loopback = ipaddress.ip_address(bind_host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    return tuple(dict.fromkeys([*LOOPBACK_HOSTS, bind_host.strip("[]")])) if loopback else (ANY_HOST,)
