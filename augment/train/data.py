"""Training data: the exported shards, as a `datasets.Dataset` in the shape TRL's SFTTrainer takes.

- `cpt` shards -> {"text"} rows (language modelling; the trainer packs them into full sequences);
- `chat` shards -> {"prompt", "completion"} rows (the model's chat template is applied by TRL, and
  the loss is on the assistant turn only);
- `answers_only` (cpt): question-answer records ("Question: ...\nAnswer: ...", the `qa` and `qa-spans`
  record text) -> {"prompt", "completion"} rows split after "Answer:", so the loss is on the answer, as
  closed-book QA asks it; every other row (paraphrases, notes, replay) -> an empty prompt, loss on all
  its tokens but BOS (the tokenised empty prompt, so not exactly as without `answers_only`);
- replay: raw source documents (RUN/documents.jsonl, beside the shards) and an optional generic
  corpus, added until they make up the requested share of training tokens; `replay_title` opens each
  replayed document with its title line (cpt), `replay_shuffle` writes every copy of a document after
  the first with its sentences in a new order.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

from augment.errors import AugmentError
from augment.io import read_jsonl, sha256_file
from augment.tokens import approx_count


def read_manifest(shards: Path) -> dict[str, Any]:
    path = shards / "manifest.json"
    if not path.is_file():
        raise AugmentError(f"{shards}: no manifest.json (run 'augment export RUN' and pass RUN/shards)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise AugmentError(f"{path}: not valid JSON ({e.msg})") from None


def shards_fingerprint(manifest: dict[str, Any]) -> str:
    """What a set of shards holds, for telling whether a run trained on these: the hash of its files'
    names and contents as the manifest lists them (not the manifest's own bytes, which record when
    it was written: a re-export of the same records has the same fingerprint)."""
    files = sorted(
        (str(f.get("path")), str(f.get("split")), str(f.get("format")), str(f.get("sha256")))
        for f in manifest.get("files", [])
    )
    return hashlib.sha256(json.dumps(files).encode()).hexdigest()


def _files(shards: Path, manifest: dict[str, Any], split: str) -> tuple[str, list[str]]:
    files = [f for f in manifest.get("files", []) if f["split"] == split]
    for fmt, builder in (("parquet", "parquet"), ("jsonl", "json")):
        chosen = [str(shards / f["path"]) for f in files if f["format"] == fmt]
        if chosen:
            missing = [p for p in chosen if not Path(p).is_file()]
            if missing:
                raise AugmentError(
                    f"{missing[0]}: listed in manifest.json but missing; re-run 'augment export'"
                )
            return builder, chosen
    return "", []


def _to_prompt_completion(row: dict[str, Any]) -> dict[str, Any]:
    messages = row["messages"]
    if not messages or messages[-1]["role"] != "assistant":
        raise AugmentError(f"record {row.get('id')}: a chat record must end with an assistant turn")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


QUESTION, ANSWER = "Question: ", "\nAnswer:"


def answer_split(text: str) -> dict[str, str]:
    """A question-answer record's text -> {"prompt": through "Answer:", "completion": the answer};
    any other text -> {"prompt": "", "completion": text} (trained on every token)."""
    cut = text.find(ANSWER) if text.startswith(QUESTION) else -1
    if cut > 0 and text[cut + len(ANSWER) :].strip():
        cut += len(ANSWER)
        return {"prompt": text[:cut], "completion": text[cut:]}
    return {"prompt": "", "completion": text}


def _replay_rows(
    shards: Path,
    fmt: str,
    corpus: Path | None,
    tokens: int,
    seed: int,
    title_line: bool = False,
    shuffle: bool = False,
) -> list[dict[str, Any]]:
    """Raw text worth `tokens` tokens (approx), documents first, then the generic corpus, cycled.

    `title_line` (cpt): a titled document's text follows its title and a blank line. `shuffle`: each
    copy of a text after the first has its sentences in a new order, drawn from a generator of its
    own, so the documents' order is the same as without it."""
    pool: list[tuple[str, str]] = []
    docs = shards.parent / "documents.jsonl"
    if docs.is_file():
        pool += [(d.get("title", ""), d["text"]) for d in read_jsonl(docs)]
    if corpus is not None:
        if not corpus.is_file():
            raise AugmentError(f"{corpus}: replay corpus not found")
        for i, row in enumerate(read_jsonl(corpus)):
            if not isinstance(row.get("text"), str):
                raise AugmentError(f"{corpus}:{i + 1}: replay corpus rows need a 'text' field")
            pool.append(("", row["text"]))
    if not pool:
        raise AugmentError(
            f"--replay needs the raw documents ({docs} is missing) or --replay-corpus with {{'text'}} rows"
        )
    rng = random.Random(seed)
    reorder = random.Random(f"{seed}/sentences")
    order = list(range(len(pool)))
    copies = [0] * len(pool)
    rows: list[dict[str, Any]] = []
    total = 0
    while total < tokens:
        rng.shuffle(order)
        for i in order:
            title, text = pool[i]
            if shuffle and copies[i]:
                text = shuffled_sentences(text, reorder)
            copies[i] += 1
            if fmt == "cpt":
                if title_line and title:
                    text = f"{title}\n\n{text}"
                rows.append({"text": text})
            else:
                ask = f"Recite the document '{title}'." if title else "Recite a passage you have read."
                rows.append(
                    {
                        "prompt": [{"role": "user", "content": ask}],
                        "completion": [{"role": "assistant", "content": text}],
                    }
                )
            total += approx_count(text)
            if total >= tokens:
                break
    return rows


def shuffled_sentences(text: str, rng: random.Random) -> str:
    """`text`'s sentences in an order drawn from `rng`, joined by spaces; a text of one sentence
    comes back as it is. A blank line ends a sentence, a single line break does not (wrapped text,
    as PDFs give it, keeps its sentences whole); within a paragraph augment's span splitter decides
    (abbreviations and initials do not end one)."""
    from augment.strategies.spans import sentences

    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
    parts = [s for p in paragraphs for _, s in sentences(p)]
    if len(parts) < 2:
        return text
    rng.shuffle(parts)
    return " ".join(parts)


def load_training_data(
    shards: Path,
    replay: float = 0.0,
    replay_corpus: Path | None = None,
    seed: int = 0,
    answers_only: bool = False,
    replay_title: bool = False,
    replay_shuffle: bool = False,
):
    """(train dataset, validation dataset or None, manifest, manifest sha256)."""
    from datasets import Dataset, concatenate_datasets, load_dataset

    manifest = read_manifest(shards)
    fmt = manifest.get("format")
    if fmt not in ("cpt", "chat"):
        raise AugmentError(f"{shards}/manifest.json: unknown shard format {fmt!r}")
    out = {}
    for split in ("train", "val"):
        builder, files = _files(shards, manifest, split)
        if not files:
            out[split] = None
            continue
        ds = load_dataset(builder, data_files=files, split="train")
        if fmt == "cpt":
            ds = ds.select_columns(["text"])
        else:
            ds = ds.map(_to_prompt_completion, remove_columns=ds.column_names)
        out[split] = ds
    train = out["train"]
    if train is None or len(train) == 0:
        raise AugmentError(f"{shards}: the manifest lists no training records")
    if replay > 0:
        synthetic = int(manifest.get("tokens", {}).get("train") or 0)
        budget = int(synthetic * replay / (1 - replay))
        rows = _replay_rows(shards, fmt, replay_corpus, budget, seed, replay_title, replay_shuffle)
        train = concatenate_datasets([train, Dataset.from_list(rows, features=train.features)]).shuffle(
            seed=seed
        )
    val = out["val"]
    if answers_only and fmt == "cpt":  # chat rows are already trained on the assistant turn only
        train = train.map(lambda r: answer_split(r["text"]), remove_columns=["text"])
        val = val.map(lambda r: answer_split(r["text"]), remove_columns=["text"]) if val is not None else None
    return train, val, manifest, sha256_file(shards / "manifest.json")
