"""Local engine vs Ray Data on this machine: generate (mock backend) and near-duplicate search.

    python bench/scale.py [--docs 200] [--texts 20000] [--cpus 2] [--json OUT]

Prints one table: records, seconds and records/s of (a) the local engine and (b) `--engine ray` on
a local Ray cluster of --cpus CPUs, for generate (ingest + chunk + mock generation + write; no
curate) and for near-duplicate search over --texts texts with 5 % planted near duplicates; then
(b)'s rate as a share of (a)'s. Ray's start-up (ray.init) is timed apart. Both must find the
same records and duplicates; the bench checks that before it prints.

Expected scaling to N nodes (on paper, not measured here):
- generate: per node. Each actor owns a backend and whole documents; actors share nothing, so
  with a GPU (vLLM) or a server pool behind each actor records/s grows ~linearly in N until the
  driver's single steps dominate: reading the documents (ingest) and writing the sorted JSONL.
  Those are O(corpus) on one machine (about 1-2 s per 10^5 documents read, and the write at disk
  speed), small next to generation at any real model's speed.
- ordering the output: a distributed sort (all-to-all) of lines by (file, wave, position); its
  cost is the records' bytes moved once.
- near-dup: signatures and band hashes are per node (map_batches, ~linear in N); the shuffle is the
  groupby on band hashes: 16 (band, index) pairs of 16 bytes per text cross the network, ~256 B per
  record. Confirmation and the in-order resolution run on the driver over the candidate pairs only
  (texts sharing a band: a few % of a real corpus), so they stay small unless most of the corpus
  is near-duplicate, and a bucket of b near-identical texts costs b^2/2 pairs.
- On 2 cores (this machine) Ray can only lose: its actors, scheduler and object store share the
  same two cores with the work, and the mock answers in microseconds. The table shows that
  overhead, which is what a job pays per machine before it gains from many.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import make_corpus  # noqa: E402

from augment.config import load_config  # noqa: E402
from augment.curate.dedup import MinHashDedup  # noqa: E402
from augment.pipeline import generate  # noqa: E402


def texts_with_duplicates(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(5000)]
    texts = [" ".join(rng.choices(words, k=80)) for _ in range(n)]
    for j in rng.sample(range(1, n), n // 20):  # 5 %: a copy of an earlier text with 1 word changed
        w = texts[rng.randrange(j)].split()
        w[rng.randrange(len(w))] = "changed"
        texts[j] = " ".join(w)
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--texts", type=int, default=20000)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import ray

    from augment.curate.ray_dedup import ray_near_duplicates
    from augment.pipeline.ray_engine import generate_ray

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        make_corpus(docs, args.docs)
        cfg = load_config(
            None, dict(backend="mock", strategies=["qa", "paraphrase"], curate=False, export=False)
        )
        t = time.perf_counter()
        local = generate([str(docs)], Path(tmp) / "local", cfg)
        local_s = time.perf_counter() - t

        t = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - t
        t = time.perf_counter()
        on_ray = generate_ray([str(docs)], Path(tmp) / "ray", cfg, actors=args.cpus)
        ray_s = time.perf_counter() - t
        records = sum(local.records.values())
        for p in (Path(tmp) / "local" / "generated").glob("*.jsonl"):
            if p.read_bytes() != (Path(tmp) / "ray" / "generated" / p.name).read_bytes():
                raise SystemExit(f"{p.name}: the engines wrote different records")
        assert on_ray.records == local.records
        rows.append(("generate (mock)", records, local_s, ray_s))

    texts = texts_with_duplicates(args.texts)
    t = time.perf_counter()
    found_local = MinHashDedup(0.8).find(texts)
    dedup_local_s = time.perf_counter() - t
    t = time.perf_counter()
    found_ray = ray_near_duplicates(texts, threshold=0.8)
    dedup_ray_s = time.perf_counter() - t
    if found_ray != found_local:
        raise SystemExit("near-dup: the engines found different duplicates")
    rows.append(("near-dup", len(texts), dedup_local_s, dedup_ray_s))
    dups = sum(m is not None for m in found_local)

    table = Table(
        title=f"local engine vs Ray Data on {args.cpus} CPUs (ray.init {init_s:.1f} s, not included)"
    )
    for col in ("stage", "records", "local s", "local rec/s", "ray s", "ray rec/s", "ray / local"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    out = []
    for stage, n, a, b in rows:
        table.add_row(stage, str(n), f"{a:.2f}", f"{n / a:,.0f}", f"{b:.2f}", f"{n / b:,.0f}", f"{a / b:.2f}")
        out.append(
            {
                "stage": stage,
                "records": n,
                "local_s": round(a, 3),
                "ray_s": round(b, 3),
                "ray_over_local": round(a / b, 3),
            }
        )
    Console().print(table)
    print(f"near duplicates found: {dups} of {len(texts)} texts (both engines, same pairs)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"cpus": args.cpus, "ray_init_s": round(init_s, 2), "rows": out, "near_duplicates": dups},
                indent=2,
            )
            + "\n"
        )
    ray.shutdown()


if __name__ == "__main__":
    main()
