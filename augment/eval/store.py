"""The answers `augment eval` has scored, kept in OUTPUT/answers.sqlite: a killed eval resumes, and
an eval run again (another model added, a report rebuilt) scores only what it has not scored.

An answer is keyed by everything that changes it: the model's weights (its folder's files by name,
size and modification time, so a model trained again into the same folder is scored afresh), the
engine and device, the whole prompt (shots and title included), the answer length and the gold
answers whose likelihood is scored. The batch size is not in the key: batches are padded, so
a different batch size can move a greedy answer on a near tie, no more. Delete the file to score
everything again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from augment.io import sha256_hex
from augment.pipeline.cache import open_db

_MIGRATIONS = [
    """CREATE TABLE answers (
        key TEXT PRIMARY KEY,
        prediction TEXT NOT NULL,
        nll REAL,
        nll_source REAL,
        created REAL NOT NULL
    )""",
]

ANSWERS = "answers.sqlite"
Scored = tuple[str, float, float]  # greedy answer, gold answer NLL, NLL in the passage's wording


def model_fingerprint(path: str) -> str:
    """What identifies a model's weights: for a folder or file, each file's name, size and
    modification time (not its bytes: hashing gigabytes would cost more than scoring); for a hub
    name, the name and the cached snapshot's folder (its commit)."""
    p = Path(path).expanduser()
    if not p.exists():
        try:
            from huggingface_hub import snapshot_download

            p = Path(snapshot_download(path, local_files_only=True))
        except Exception:  # not cached: loading it fails later with its own error
            return sha256_hex(path)
    files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    stats = [(str(p.resolve()), f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return sha256_hex(json.dumps(stats))


def _float(value: float | None) -> float:
    return float("nan") if value is None else value  # SQLite keeps NaN as NULL


class AnswerStore:
    def __init__(self, path: Path):
        self.path = path
        self._db = open_db(path, _MIGRATIONS)

    @staticmethod
    def key(model: str, engine: str, prompt: str, max_new_tokens: int, answers: list[str]) -> str:
        """`model`: model_fingerprint plus device; `answers`: every answer form whose likelihood is scored."""
        return sha256_hex(json.dumps([model, engine, prompt, max_new_tokens, answers]))

    def get(self, keys: list[str]) -> dict[str, Scored]:
        found: dict[str, Scored] = {}
        for lo in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            part = keys[lo : lo + 500]
            rows = self._db.execute(
                f"SELECT key, prediction, nll, nll_source FROM answers WHERE key IN ({','.join('?' * len(part))})",
                part,
            )
            found.update({k: (p, _float(n), _float(s)) for k, p, n, s in rows})
        return found

    def put(self, scored: dict[str, Scored]) -> None:
        """Store answers in one transaction: committed before the next batch starts."""
        now = time.time()
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?)",
                [(k, p, n, s, now) for k, (p, n, s) in scored.items()],
            )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        self._db.close()
