"""augment train on CPU with a tiny Llama built from a config here and a tokenizer trained here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("trl")
pytest.importorskip("peft")

from augment.errors import AugmentError  # noqa: E402
from augment.io import read_jsonl  # noqa: E402
from augment.train.args import TrainConfig  # noqa: E402
from augment.train.trainer import train  # noqa: E402


def lm_loss(model, tokenizer, texts: list[str]) -> float:
    model.eval()
    with torch.no_grad():
        losses = []
        for t in texts:
            ids = tokenizer(t, return_tensors="pt", truncation=True, max_length=128).input_ids
            losses.append(float(model(ids, labels=ids).loss))
    return sum(losses) / len(losses)


def logits(model, tokenizer, text: str = "Kestrel K2 burr grinder, step 16 for pour-over.") -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(tokenizer(text, return_tensors="pt").input_ids).logits


def cfg(shards: Path, model: Path, output: Path, **kw) -> TrainConfig:
    base = dict(
        shards=shards, model=str(model), output=output, max_seq_len=128, batch_size=8, logging_steps=1
    )
    return TrainConfig(**{**base, **kw})


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU path")
def test_bf16_on_a_cpu_keeps_fp32_weights(shards, tiny_model, tmp_path):
    """bf16 = "on" on a CPU computes under bf16 autocast but updates fp32 weights: a small step
    (lr 1e-5, well below bf16's 3.9e-3 relative resolution) still moves nearly every weight."""
    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    result = train(
        cfg(shards["cpt"], tiny_model, tmp_path / "ckpt", method="full", max_steps=2, lr=1e-5, bf16="on")
    )
    assert json.loads((tmp_path / "ckpt" / "train.json").read_text())["hyperparameters"]["bf16"] is True
    before = dict(base.named_parameters())
    for name, p in result.model.named_parameters():
        assert p.dtype == torch.float32, name
        if name.endswith("mlp.up_proj.weight"):
            moved = (p.detach() != before[name].detach().to(p.dtype)).float().mean().item()
            assert moved > 0.9, (name, moved)  # bf16 weights: the update rounds away


def test_full_cpt_lowers_loss_and_the_checkpoint_reloads(shards, tiny_model, tmp_path):
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model)
    texts = [r["text"] for r in read_jsonl(next(shards["cpt"].glob("train-*.jsonl")))][:20]
    before = lm_loss(transformers.AutoModelForCausalLM.from_pretrained(tiny_model), tok, texts)
    logged = []
    result = train(
        cfg(shards["cpt"], tiny_model, tmp_path / "ckpt", method="full", epochs=3, lr=3e-3), logged.append
    )
    after = lm_loss(result.model, tok, texts)
    assert after < before - 0.5, (before, after)
    assert result.steps > 3 and result.tokens > 0 and logged and logged[-1]["loss"] > 0
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    assert torch.allclose(logits(reloaded, tok), logits(result.model, tok), atol=1e-5)
    assert (tmp_path / "ckpt" / "model.safetensors").is_file()
    assert not (tmp_path / "ckpt" / "checkpoints").exists()
    info = json.loads((tmp_path / "ckpt" / "train.json").read_text())
    assert info["format"] == "cpt" and info["method"] == "full" and len(info["manifest_sha256"]) == 64
    assert (
        info["loss_curve"][0]["loss"] > info["loss_curve"][-1]["loss"]
        and info["tokens_seen"] == result.tokens
    )
    assert info["eval_loss"] is not None


def test_lora_chat_merge_equals_the_adapter(shards, tiny_model, tmp_path):
    from peft import PeftModel

    out = tmp_path / "lora"
    result = train(cfg(shards["chat"], tiny_model, out, method="lora", max_steps=6, lr=1e-2, merge=True))
    tok = transformers.AutoTokenizer.from_pretrained(out)
    merged = transformers.AutoModelForCausalLM.from_pretrained(out)
    adapter = PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(tiny_model), out / "adapter"
    )
    assert torch.allclose(logits(merged, tok), logits(adapter, tok), atol=1e-4)
    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    assert not torch.allclose(logits(merged, tok), logits(base, tok), atol=1e-4)  # training changed it
    assert result.steps == 6 and json.loads((out / "train.json").read_text())["format"] == "chat"


def test_resume_continues_from_the_saved_step(shards, tiny_model, tmp_path):
    class Crash(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt  # as if killed after the checkpoint at step 2

    c = cfg(shards["cpt"], tiny_model, tmp_path / "ckpt", method="full", max_steps=5, save_steps=2)
    with pytest.raises(KeyboardInterrupt):
        train(c, callbacks=[Crash()])
    assert (tmp_path / "ckpt" / "checkpoints" / "checkpoint-2").is_dir()
    result = train(c)
    assert result.resumed_from == "checkpoint-2" and result.steps == 5
    assert [p["step"] for p in result.loss_curve][-3:] == [3, 4, 5]


def test_replay_mixes_in_the_raw_documents(shards, tiny_model, tmp_path):
    from augment.train.data import load_training_data

    plain, _, manifest, _ = load_training_data(shards["cpt"])
    mixed, _, _, _ = load_training_data(shards["cpt"], replay=0.5, seed=1)
    docs = {d["text"] for d in read_jsonl(shards["cpt"].parent / "documents.jsonl")}
    replayed = [r["text"] for r in mixed if r["text"] in docs]
    assert len(mixed) == len(plain) + len(replayed) and replayed
    from augment.tokens import approx_count

    share = sum(map(approx_count, replayed)) / (
        sum(map(approx_count, replayed)) + manifest["tokens"]["train"]
    )
    assert 0.45 <= share < 0.75  # whole documents, so a little over the asked share
    chat, _, _, _ = load_training_data(shards["chat"], replay=0.2)
    assert any(r["prompt"][0]["content"].startswith("Recite the document") for r in chat)


def test_replay_title_and_shuffle_restate_the_documents(shards):
    """--replay-title opens every replayed document with its title; --replay-shuffle keeps each
    document's first copy as written and gives the later ones the same sentences in other orders.
    Neither changes the synthetic rows, and with both off replay is as before."""
    from augment.train.data import load_training_data

    docs = {d["text"]: d["title"] for d in read_jsonl(shards["cpt"].parent / "documents.jsonl")}
    plain, _, _, _ = load_training_data(shards["cpt"], replay=0.8, seed=3)
    formed, _, _, _ = load_training_data(
        shards["cpt"], replay=0.8, seed=3, replay_title=True, replay_shuffle=True
    )
    assert load_training_data(shards["cpt"], replay=0.8, seed=3)[0]["text"] == plain["text"]
    synthetic = [t for t in plain["text"] if t not in docs]
    titled = {f"{title}\n\n": text for text, title in docs.items() if title}
    assert titled, "the examples' documents have titles"
    copies: dict[str, list[str]] = {}
    for t in formed["text"]:
        head = next((h for h in titled if t.startswith(h)), None)
        if head is None:
            continue
        copies.setdefault(head, []).append(t[len(head) :])
    assert sorted(t for t in formed["text"] if not any(t.startswith(h) for h in titled)) == sorted(
        synthetic
    )  # every replayed row carries a title; the synthetic rows are untouched
    reordered = 0
    for head, bodies in copies.items():
        source = titled[head]
        assert source in bodies  # the first copy as written
        for body in bodies:
            assert sorted(body.split()) == sorted(source.split())  # nothing lost or reworded
        reordered += sum(body != source for body in bodies)
    assert len(copies) == len(titled) and reordered > 0


def test_shuffled_sentences_keeps_wrapped_sentences_whole():
    import random

    from augment.train.data import shuffled_sentences

    text = "The K2 grinds\nin 40 steps. Dr. Vale designed it in 2019.\n\nA manual\n\nIt ships in May."
    units = {"The K2 grinds in 40 steps.", "Dr. Vale designed it in 2019.", "A manual", "It ships in May."}
    seen = set()
    for seed in range(30):
        out = shuffled_sentences(text, random.Random(seed))
        parts, rest = [], out
        while rest:  # the output is the four units joined by single spaces, in some order
            unit = next(u for u in units if rest.startswith(u))
            parts.append(unit)
            rest = rest[len(unit) :].removeprefix(" ")
        assert sorted(parts) == sorted(units)
        seen.add(tuple(parts))
    assert len(seen) > 5
    assert shuffled_sentences("One sentence\nwrapped.", random.Random(0)) == "One sentence\nwrapped."


def test_answers_only_splits_question_answer_records(shards):
    from augment.train.data import answer_split, load_training_data

    texts = [r["text"] for r in read_jsonl(next(shards["cpt"].glob("train-*.jsonl")))]
    qa = [t for t in texts if t.startswith("Question: ")]
    assert 0 < len(qa) < len(texts)  # the fixture has notes records too
    rows, val, _, _ = load_training_data(shards["cpt"], replay=0.5, seed=1, answers_only=True)
    assert set(rows.column_names) == {"prompt", "completion"} and set(val.column_names) == set(
        rows.column_names
    )
    whole = [r["prompt"] + r["completion"] for r in rows]
    assert set(texts) <= set(whole)  # nothing lost or reworded; replay rows come on top
    split = [r for r in rows if r["prompt"]]
    assert len(split) == len(qa)
    for r in split:
        assert r["prompt"].startswith("Question: ") and r["prompt"].endswith("\nAnswer:"), r
        assert r["completion"].strip() and "Question: " not in r["completion"], r
    # a question without an answer, or text that only mentions one, trains on every token
    for text in ("Question: Who?\nAnswer: ", "Notes\nQuestion: Who?\nAnswer: Ada"):
        assert answer_split(text) == {"prompt": "", "completion": text}


def test_answers_only_puts_the_loss_on_the_answers(shards, tiny_model, tmp_path):
    """What reaches the loss: the labelled tokens of a packed batch hold the answers and the notes,
    never a question; without --answers-only the questions are labelled too."""
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model)
    seen: dict[bool, tuple[str, str]] = {}

    def batches(answers_only: bool):
        class Grab(transformers.TrainerCallback):
            def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
                batch = next(iter(train_dataloader))
                ids, labels = batch["input_ids"], batch["labels"]
                seen[answers_only] = (tok.decode(ids[labels != -100]), tok.decode(ids.flatten()))

        out = tmp_path / str(answers_only)
        train(
            cfg(shards["cpt"], tiny_model, out, method="full", max_steps=1, answers_only=answers_only),
            callbacks=[Grab()],
        )
        return json.loads((out / "train.json").read_text())

    texts = [r["text"] for r in read_jsonl(next(shards["cpt"].glob("train-*.jsonl")))]
    info = batches(True)
    labelled, everything = seen[True]
    assert "Question:" in everything and "Question:" not in labelled and labelled.strip()
    assert info["answer_only_rows"] == sum(t.startswith("Question: ") for t in texts)
    assert info["hyperparameters"]["answers_only"] is True
    info = batches(False)
    labelled, everything = seen[False]
    assert "Question:" in labelled and info["answer_only_rows"] == 0


def test_answers_only_leaves_other_rows_trained_but_for_bos(shards, tiny_model, tmp_path):
    """A row that is not a question-answer record becomes an empty prompt plus completion: the
    same token ids as without --answers-only, and the same labels but its BOS, which TRL counts
    as the prompt (the documented difference: bench/UPTAKE.md saw it move a full fine-tune)."""
    from tokenizers import processors

    from augment.io import write_jsonl
    from augment.shards.writer import export

    model = tmp_path / "bos-model"
    shutil.copytree(tiny_model, model)
    tok = transformers.AutoTokenizer.from_pretrained(model)
    bos = tok.bos_token_id
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bos)]
    )
    tok.save_pretrained(model)
    assert transformers.AutoTokenizer.from_pretrained(model)("a b")["input_ids"][0] == bos

    run = tmp_path / "notes"
    (run / "curated").mkdir(parents=True)
    texts = [r["text"] for r in read_jsonl(next(shards["cpt"].glob("train-*.jsonl")))]
    notes = [t for t in texts if not t.startswith("Question")]
    write_jsonl(
        run / "curated" / "kept.jsonl",
        [{"id": str(i), "strategy": "notes", "text": t, "messages": []} for i, t in enumerate(notes)],
    )
    export(run, val_fraction=0.0, file_formats=["jsonl"])
    seen = {}

    class Grab(transformers.TrainerCallback):
        def __init__(self, key):
            self.key = key

        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
            batch = next(iter(train_dataloader))
            seen[self.key] = (batch["input_ids"], batch["labels"])

    for answers_only in (False, True):
        out = tmp_path / f"ckpt-{answers_only}"
        c = cfg(run / "shards", model, out, method="full", max_steps=1, answers_only=answers_only)
        train(c, callbacks=[Grab(answers_only)])
    (ids, labels), (ids_ao, labels_ao) = seen[False], seen[True]
    assert torch.equal(ids, ids_ao) and (ids == bos).sum() > 0
    assert torch.equal(labels, ids)  # every token, BOS too
    assert torch.equal(labels_ao == -100, ids == bos)  # every token but BOS


def test_errors_are_one_line(cli, shards, tiny_model, tmp_path):
    r = cli("train", shards["cpt"], "-o", tmp_path / "x")
    assert r.code == 2 and r.err.strip() == "error: augment train needs --model"
    r = cli("train", tmp_path, "--model", tiny_model, "-o", tmp_path / "x")
    assert r.code == 1 and "no manifest.json" in r.err
    r = cli("train", shards["cpt"], "--model", tmp_path / "nope", "-o", tmp_path / "x")
    assert r.code == 1 and "no such model folder" in r.err
    r = cli(
        "train", shards["cpt"], "--model", tiny_model, "-o", tmp_path / "x", "--method", "full", "--merge"
    )
    assert r.code == 2 and "merge only applies to --method lora" in r.err
    r = cli("train", shards["cpt"], "--model", tiny_model, "-o", tmp_path / "x", "--replay-shuffle")
    assert r.code == 2 and "they need --replay > 0" in r.err and len(r.err.strip().splitlines()) == 1
    no_template = tmp_path / "plain"
    shutil.copytree(tiny_model, no_template)
    tok_cfg = json.loads((no_template / "tokenizer_config.json").read_text())
    tok_cfg.pop("chat_template", None)
    (no_template / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    for f in no_template.glob("chat_template.*"):
        f.unlink()
    with pytest.raises(AugmentError, match="has no chat template"):
        train(cfg(shards["chat"], no_template, tmp_path / "y"))


@pytest.mark.parametrize("fmt", ["cpt", "chat"])
def test_a_step_run_in_micro_batches_is_the_same_step(shards, tiny_model, tmp_path, fmt):
    """Four sequences a step in one pass or in four passes of one: the same weights after two steps
    (chat rows differ in length, so the loss must be normalised over the step's tokens, not each pass's)."""
    runs = {}
    for micro in (4, 1):
        out = tmp_path / f"m{micro}"
        runs[micro] = train(
            cfg(
                shards[fmt],
                tiny_model,
                out,
                method="full",
                max_steps=2,
                batch_size=4,
                micro_batch=micro,
                lr=1e-3,
            )
        )
        hp = json.loads((out / "train.json").read_text())["hyperparameters"]
        assert (hp["micro_batch_used"], hp["passes_per_step"]) == (micro, 4 // micro)
    assert runs[4].tokens == runs[1].tokens
    one, four = dict(runs[1].model.named_parameters()), dict(runs[4].model.named_parameters())
    base = dict(transformers.AutoModelForCausalLM.from_pretrained(tiny_model).named_parameters())
    for name, p in four.items():
        assert not torch.equal(p, base[name].to(p.dtype)), name  # the steps moved it
        assert torch.allclose(p, one[name], atol=2e-6), (name, (p - one[name]).abs().max())


def test_the_micro_batch_is_the_largest_divisor_that_fits(tiny_model, monkeypatch, tmp_path):
    import augment.train.trainer as trainer

    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    conf = cfg(tmp_path, tiny_model, tmp_path / "o", batch_size=12, max_seq_len=128)
    text = model.config
    sequence = 4 * (6 * text.vocab_size + 24 * text.hidden_size * text.num_hidden_layers) * 128
    params = sum(p.numel() for p in model.parameters())
    weights = 4 * params  # fp32: the weights come off the free memory first
    assert weights * 0.8 > 0.1 * sequence  # so that 3.9 sequences' room fits 3, not 4 with the weights
    cases = ((100 * sequence, 12), (int(5.1 * sequence / 0.8), 4), (int(3.9 * sequence / 0.8), 3))
    for free, size in (*cases, (sequence, 1), (0, 1)):
        monkeypatch.setattr(trainer, "_free_memory", lambda torch, cuda, free=free: weights + free)
        plan = trainer.plan_micro_batch(conf, model, torch, cuda=False)
        assert (plan.size, plan.passes, plan.sequence_bytes) == (size, 12 // size, sequence), free
    full = conf.model_copy(update={"method": "full"})  # its gradients and optimizer state come first
    monkeypatch.setattr(
        trainer, "_free_memory", lambda torch, cuda: weights + 12 * params + int(6.5 * sequence / 0.8)
    )
    assert trainer.plan_micro_batch(full, model, torch, cuda=False).size == 6
    assert trainer.plan_micro_batch(conf.model_copy(update={"micro_batch": 3}), model, torch, False).size == 3
    with pytest.raises(ValueError, match="micro_batch 5 does not divide batch_size 12"):
        cfg(tmp_path, tiny_model, tmp_path / "o", batch_size=12, micro_batch=5)


def test_cli_says_when_a_step_takes_several_passes(cli, shards, tiny_model, tmp_path, monkeypatch):
    import augment.train.trainer as trainer

    monkeypatch.setattr(trainer, "_free_memory", lambda torch, cuda: 1)  # nothing fits: one at a time
    args = ("train", shards["cpt"], "--model", tiny_model, "--max-steps", "1", "--batch-size", "4")
    r = cli(*args, "--max-seq-len", "64", "-o", tmp_path / "a")
    assert r.code == 0, r.err
    assert (
        "train: 4 sequences a step in 4 passes of 1 (one of 64 tokens needs about 0.0 GB, 0.0 GB free;"
        in r.err
    )
    r = cli(*args, "--max-seq-len", "64", "-o", tmp_path / "b", "--micro-batch", "2")
    assert r.code == 0 and "train: 4 sequences a step in 2 passes of 2 (--micro-batch 2)" in r.err
    r = cli(*args, "-o", tmp_path / "c", "--micro-batch", "3")
    assert r.code == 2 and r.err.strip() == "error: micro_batch 3 does not divide batch_size 4"


def test_cli_trains_with_a_config_file(cli, shards, tiny_model, tmp_path):
    conf = tmp_path / "train.toml"
    conf.write_text(
        f'model = "{tiny_model}"\nmethod = "lora"\nmax_steps = 2\nmax_seq_len = 64\nbatch_size = 4\nlogging_steps = 1\n'
    )
    r = cli("train", shards["cpt"], "-c", conf, "-o", tmp_path / "ckpt")
    assert r.code == 0, r.err
    assert "trained lora" in r.out and "train: step 2/2" in r.err
    assert (tmp_path / "ckpt" / "adapter_model.safetensors").is_file()
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "ckpt")
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")  # base + adapter
    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    assert not torch.equal(logits(loaded, tok), logits(base, tok))  # the adapter was loaded and applied


def test_cli_says_how_many_rows_trained_on_their_answer(cli, shards, tiny_model, tmp_path):
    from augment.io import write_jsonl
    from augment.shards.writer import export

    args = ["--model", tiny_model, "--method", "full", "--max-steps", "1", "--max-seq-len", "64"]
    texts = [r["text"] for r in read_jsonl(next(shards["cpt"].glob("train-*.jsonl")))]
    r = cli("train", shards["cpt"], "--answers-only", "-o", tmp_path / "qa", *args)
    qa = sum(t.startswith("Question: ") for t in texts)
    assert r.code == 0 and f", {qa} of {len(texts)} rows on their answer only" in r.out, r.out
    assert "warning" not in r.err
    # shards with no question-answer record: said, not silently trained on every token
    run = tmp_path / "notes"
    (run / "curated").mkdir(parents=True)
    notes = [{"id": str(i), "strategy": "notes", "text": t, "messages": []} for i, t in enumerate(texts)]
    write_jsonl(run / "curated" / "kept.jsonl", [n for n in notes if not n["text"].startswith("Question")])
    export(run, val_fraction=0.0, file_formats=["jsonl"])
    r = cli("train", run / "shards", "--answers-only", "-o", tmp_path / "n", *args)
    assert r.code == 0, r.err
    assert f"warning: --answers-only: no row of {run / 'shards'} is a question-answer record" in r.err
    assert f", 0 of {len(texts) - qa} rows on their answer only" in r.out
    # chat shards train on the assistant turn with or without it: nothing to count or warn about
    r = cli("train", shards["chat"], "--answers-only", "-o", tmp_path / "chat", *args)
    assert r.code == 0 and "trained full" in r.out and "answer only" not in r.out and "warning" not in r.err


def test_snapshots_hold_the_weights_of_their_step(cli, shards, tiny_model, tmp_path):
    class Watch(transformers.TrainerCallback):
        """The trained weights at each step end (runs after the snapshot callback)."""

        seen: dict[int, dict[str, torch.Tensor]] = {}

        def on_step_end(self, args, state, control, model=None, **kwargs):
            self.seen[state.global_step] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    out = tmp_path / "ckpt"
    c = cfg(shards["cpt"], tiny_model, out, method="full", max_steps=5, lr=3e-3, snapshot_steps="4, 2")
    assert c.snapshot_steps == [2, 4]
    result = train(c, callbacks=[Watch()])
    assert result.steps == 5 and sorted(p.name for p in out.glob("step-*")) == ["step-2", "step-4"]
    assert not list(out.glob(".step-*"))  # no temp folder left
    for step in (2, 4):
        snap = transformers.AutoModelForCausalLM.from_pretrained(out / f"step-{step}")
        for name, value in snap.state_dict().items():
            assert torch.equal(value, Watch.seen[step][name]), (step, name)
        assert json.loads((out / f"step-{step}" / "snapshot.json").read_text())["step"] == step
    tok = transformers.AutoTokenizer.from_pretrained(out / "step-2")
    two = transformers.AutoModelForCausalLM.from_pretrained(out / "step-2")
    final = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert not torch.allclose(logits(two, tok), logits(final, tok), atol=1e-4)  # training went on
    assert json.loads((out / "train.json").read_text())["snapshots"] == ["step-2", "step-4"]

    # LoRA with --merge: a snapshot is merged weights (from a copy: training goes on with the adapter)
    r = cli(
        "train", shards["chat"], "--model", tiny_model, "-o", tmp_path / "lora", "--max-steps", "4",
        "--lr", "1e-2", "--batch-size", "4", "--max-seq-len", "64", "--merge", "--snapshot-steps", "2",
    )  # fmt: skip
    assert r.code == 0, r.err
    snap = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "lora" / "step-2")
    final = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "lora")
    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    assert not (tmp_path / "lora" / "step-2" / "adapter_model.safetensors").exists()  # merged, not an adapter
    assert not torch.allclose(logits(snap, tok), logits(base, tok), atol=1e-4)
    assert not torch.allclose(logits(snap, tok), logits(final, tok), atol=1e-4)

    r = cli("train", shards["cpt"], "--model", tiny_model, "-o", tmp_path / "x", "--max-steps", "4",
            "--snapshot-steps", "4")  # fmt: skip
    assert r.code == 2 and "snapshot_steps: step 4 is not before max_steps 4" in r.err
    with pytest.raises(AugmentError, match="step 10000 is not before this run's last step"):
        train(cfg(shards["cpt"], tiny_model, tmp_path / "e", epochs=1, snapshot_steps=[10000]))
    r = cli("train", shards["cpt"], "--model", tiny_model, "-o", tmp_path / "x", "--snapshot-steps", "2,x")
    assert r.code == 2 and "is not a comma-separated list of steps" in r.err


def test_a_finished_run_is_not_trained_over(shards, tiny_model, tmp_path, cli):
    """The same command again finds the run done (nothing trained, nothing written); a command that
    asks for another run into the same folder is refused in one line, unless --overwrite."""
    out = tmp_path / "ckpt"
    args = ["train", shards["cpt"], "--model", tiny_model, "-o", out, "--method", "full",
            "--max-steps", "2", "--batch-size", "2", "--max-seq-len", "64"]  # fmt: skip
    r = cli(*args)
    assert r.code == 0, r.err
    weights, info = (out / "model.safetensors").read_bytes(), (out / "train.json").read_text()
    # the shards exported again (a script run twice): the manifest records another time, and how
    # often the run saves or logs is not its recipe: still the same run
    manifest = shards["cpt"] / "manifest.json"
    original = manifest.read_text()
    manifest.write_text(json.dumps({**json.loads(original), "created_at": "2099-01-01T00:00:00Z"}))
    r = cli(*args, "--save-steps", "5", "--micro-batch", "1")
    manifest.write_text(original)
    assert r.code == 0, r.err
    assert f"{out} is already trained with these settings on these shards (2 steps" in r.out
    assert (out / "model.safetensors").read_bytes() == weights and (out / "train.json").read_text() == info
    for extra, differs in (
        (["--lr", "1e-3"], "lr None -> 0.001"),
        (["--seed", "3", "--replay", "0.5"], "seed 0 -> 3; replay 0.0 -> 0.5"),
    ):
        r = cli(*args, *extra)
        assert r.code == 1 and len(r.err.strip().splitlines()) == 1, r.err
        assert f"{out}: holds a finished training run with other settings ({differs})" in r.err, r.err
    r = cli(*[shards["chat"] if a == shards["cpt"] else a for a in args])
    assert (
        r.code == 1 and f"(the shards ({shards['chat'] / 'manifest.json'} lists other files than" in r.err
    ), r.err
    assert (out / "model.safetensors").read_bytes() == weights and (out / "train.json").read_text() == info
    # --overwrite: trained again, as asked
    r = cli(*args, "--lr", "1e-3", "--overwrite")
    assert r.code == 0 and "trained full" in r.out, r.err
    assert json.loads((out / "train.json").read_text())["hyperparameters"]["lr"] == 1e-3
    assert (out / "model.safetensors").read_bytes() != weights
