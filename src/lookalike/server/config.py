"""What the HTTP service trusts and limits, with safe defaults."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.errors import LookalikeError

MEGABYTE = 1 << 20


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
    body_timeout_seconds: float = 30.0  # a client that stalls mid-body gets 408
    banks_dir: str | None = None
    thumbnails_from_paths: bool = False  # let the page show thumbnails of files indexed by path
    generated_key: bool = field(default=False, compare=False)

    @classmethod
    def from_environment(cls, **overrides: object) -> ServerConfig:
        """Keys from LOOKALIKE_API_KEY (comma-separated) or the file LOOKALIKE_API_KEY_FILE; if
        neither is set a random key is generated (and printed by `lookalike serve`)."""
        keys = read_keys(os.environ.get("LOOKALIKE_API_KEY"), os.environ.get("LOOKALIKE_API_KEY_FILE"))
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
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def read_keys(value: str | None, key_file: str | os.PathLike[str] | None) -> tuple[str, ...]:
    """API keys from a comma-separated value and/or a file with one key per line."""
    keys = [k.strip() for k in (value or "").split(",") if k.strip()]
    if key_file:
        try:
            text = Path(key_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise LookalikeError(f"{key_file}: cannot read the API key file ({exc.strerror})") from None
        keys += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    for key in keys:
        if len(key) < 16:
            raise LookalikeError("API keys must be at least 16 characters long")
    return tuple(keys)
