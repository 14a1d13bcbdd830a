"""`lookalike hash --json` prints each hash's quality next to it (`"pdq_quality": 97`)."""

from __future__ import annotations

import json
import subprocess
import sys

import lookalike
from conftest import COMMITTED_PHOTOS, FIXTURES

DARK_PHOTO = FIXTURES / "pdq" / "reg-test-input" / "labelme-subset" / "q0003.jpg"


def test_hash_json_prints_pdq_quality_from_the_cli() -> None:
    photos = [str(COMMITTED_PHOTOS[1]), str(DARK_PHOTO)]
    done = subprocess.run(
        [sys.executable, "-m", "lookalike", "hash", *photos, "--hashes", "pdq,phash:16,colorhash", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    records = {record["path"]: record for record in map(json.loads, done.stdout.splitlines())}
    for path in photos:
        expected = lookalike.hash_file(path, ["pdq", "phash:16"])
        record = records[path]
        assert record["hashes"]["pdq"] == str(expected["pdq"])
        assert record["pdq_quality"] == expected["pdq"].quality
        assert record["phash_quality"] == expected["phash:16"].quality
        assert "colorhash_quality" not in record  # colorhash has no quality score
    assert records[photos[0]]["pdq_quality"] == 100
    assert records[str(DARK_PHOTO)]["pdq_quality"] < 50
