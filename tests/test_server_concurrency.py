"""The service keeps answering searches while another process adds to the same index.

The writer process adds entries in transactions of pairs that share one hash; a search for that
hash must see both or neither (a torn read would show one). No request may fail, and at the end
the service sees every row the writer committed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lookalike.index import open_index
from lookalike.server import ServerConfig, create_app
from tests_support import random_hash_hex, serving

SRC = str(Path(__file__).resolve().parents[1] / "src")
PAIRS = 600

WRITER = """
import sys
from lookalike.hash import Hash
from lookalike.index import open_index
from tests_support import random_hash_hex, serving
index = open_index(sys.argv[1])
for i in range(int(sys.argv[2])):
    value = Hash.from_hex(random_hash_hex(1000 + i))
    index.add([(f"pair{i}-a", {"pdq": value}), (f"pair{i}-b", {"pdq": value})])  # one transaction
    print(i, flush=True)
index.close()
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    db = tmp_path / "shared.db"
    with open_index(db) as index:  # a few entries before the writer starts
        from lookalike.hash import Hash

        index.add([(f"seed{i}", {"pdq": Hash.from_hex(random_hash_hex(i))}) for i in range(50)])
    with serving(create_app(ServerConfig(index_url=f"sqlite:///{db}", api_keys=("k" * 24,)))) as (url, _):
        yield url, db


@pytest.mark.slow
def test_searches_during_another_process_writes_see_whole_transactions(served: tuple[str, Path]) -> None:
    url, db = served
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(Path(__file__).parent)])}
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), str(db), str(PAIRS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    failures: list[str] = []
    torn: list[str] = []
    searches = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        while writer.poll() is None or searches < 50:
            pair = searches % PAIRS
            body = {"hashes": {"pdq": random_hash_hex(1000 + pair)}, "max_distance": 0}
            response = client.post("/v1/search", json=body)
            searches += 1
            if response.status_code != 200:
                failures.append(f"{response.status_code}: {response.text[:200]}")
                continue
            found = {m["id"] for m in response.json()["matches"]}
            if len(found) not in (0, 2):
                torn.append(f"pair {pair}: {sorted(found)}")
            health = client.get("/healthz")
            if health.status_code != 200:
                failures.append(f"healthz {health.status_code}")
            if searches > 20_000:
                break
        writer.wait(60)
        assert writer.returncode == 0, writer.stderr.read() if writer.stderr else ""
        assert not failures, failures[:5]
        assert not torn, torn[:5]
        assert searches >= 50
        print(f"{searches} searches while the writer committed {PAIRS} transactions")
        assert client.get("/healthz").json()["entries"] == 50 + 2 * PAIRS
        for pair in (0, PAIRS // 2, PAIRS - 1):
            body = {"hashes": {"pdq": random_hash_hex(1000 + pair)}, "max_distance": 0}
            ids = {m["id"] for m in client.post("/v1/search", json=body).json()["matches"]}
            assert ids == {f"pair{pair}-a", f"pair{pair}-b"}
