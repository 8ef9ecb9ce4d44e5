"""Command-line interface. Commands only parse flags, call the library and print summaries."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from augment.errors import AugmentError, ConfigError

app = typer.Typer(
    name="augment",
    help="Learning by thinking: turn documents into synthetic training data, train on it, measure the gain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML or YAML file with the same keys as the flags.")
]
RunDirArg = Annotated[Path, typer.Argument(help="Run directory written by 'augment generate'.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and the final summary.")]
FormatOpt = Annotated[
    str | None, typer.Option("--format", help="Shard format: cpt ({'text'}) or chat ({'messages'}).")
]
ValFractionOpt = Annotated[
    float | None, typer.Option("--val-fraction", help="Fraction of records for validation.")
]
ShardMbOpt = Annotated[float | None, typer.Option("--shard-mb", help="Maximum shard size in MB.")]
DecontaminateOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--decontaminate", help="Eval QA file whose questions and answers must not leak into training data."
    ),
]
SemanticOpt = Annotated[
    bool | None,
    typer.Option("--semantic-dedup/--no-semantic-dedup", help="Embedding dedup (extra 'semantic')."),
]
JudgeOpt = Annotated[
    bool | None,
    typer.Option("--judge/--no-judge", help="Score each record against its chunk with the model."),
]
PromptsDirOpt = Annotated[Path | None, typer.Option("--prompts-dir", help="Folder of extra prompt files.")]
DocsArg = Annotated[list[str], typer.Argument(help="Folders (read recursively), files or glob patterns.")]
BackendOpt = Annotated[
    str | None,
    typer.Option(help="auto (default), local, vllm, openai or mock (see 'augment strategies')."),
]
ModelOpt = Annotated[
    str | None, typer.Option(help="Model: a server's model name, or a .gguf file or model folder.")
]
PromptStyleOpt = Annotated[
    str | None, typer.Option(help="chat, completion (few-shot, base models) or auto (from the model).")
]
StrategiesOpt = Annotated[
    list[str] | None, typer.Option("--strategies", "-s", help="Strategies, comma-separated or repeated.")
]
SamplesOpt = Annotated[int | None, typer.Option(help="Samples per request (overrides prompt files).")]
ChunkTokensOpt = Annotated[int | None, typer.Option(help="Chunk size in tokens.")]
ChunkOverlapOpt = Annotated[int | None, typer.Option(help="Overlap between chunks in tokens.")]
TokenizerOpt = Annotated[str | None, typer.Option(help="'approx' or 'hf:PATH' to a tokenizer.json.")]
GlobOpt = Annotated[list[str] | None, typer.Option(help="Only read files matching these patterns.")]
ReadWorkersOpt = Annotated[
    int | None,
    typer.Option(help="Processes reading PDF, Office, EPUB, HTML, reST files (default: cores, up to 8)."),
]
TextFieldOpt = Annotated[str | None, typer.Option(help="Text field of .jsonl/.parquet rows, .csv column.")]
EndpointOpt = Annotated[str | None, typer.Option(help="openai backend: chat or completions.")]
BudgetTokensOpt = Annotated[
    int | None,
    typer.Option(help="entigraph/active-reading: prompt + completion tokens each may spend per document."),
]
BudgetScopeOpt = Annotated[
    str | None, typer.Option(help="--budget-tokens per 'document' (default) or for the whole 'corpus'.")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print a JSON summary on stdout (counts, tokens, failures, paths).")
]
CurateOpt = Annotated[
    bool | None, typer.Option("--curate/--no-curate", help="Dedup and filter before exporting.")
]
ExportOpt = Annotated[bool | None, typer.Option("--export/--no-export", help="Write training shards.")]


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    if debug:
        os.environ["AUGMENT_DEBUG"] = "1"


_interrupt_hint: list[str] = []  # what a command stopped by Ctrl-C tells its user (set as it starts)


def _on_interrupt(hint: str) -> None:
    """Say `hint` (what was kept, how to resume) if Ctrl-C stops the command from here on."""
    _interrupt_hint[:] = [hint]


def _writable(path: Path | None, kind: str = "folder") -> None:
    """Fail in one line, before any work, when `-o` cannot become a `kind` (folder or file)."""
    if path is None:
        return
    for above in (path, *path.parents):
        if not above.exists():
            continue
        if above == path and kind == "file" and above.is_dir():
            raise ConfigError(f"{path}: is a folder; -o names the file to write")
        if above == path and kind == "folder" and not above.is_dir():
            raise ConfigError(f"{path}: is a file; -o names a folder to write")
        if above != path and not above.is_dir():
            raise ConfigError(f"{above}: is a file, so -o {path} cannot be written")
        return


@app.command()
def generate(
    docs: DocsArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="Run directory to write.")],
    config: ConfigOpt = None,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    prompt_style: PromptStyleOpt = None,
    threads: Annotated[int | None, typer.Option(help="local backend: CPU threads (default: all).")] = None,
    context_tokens: Annotated[
        int | None, typer.Option(help="local/vllm: context window to allocate.")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="local backend, transformers model: auto, cpu, cuda.")
    ] = None,
    lora: Annotated[
        Path | None,
        typer.Option(
            help="local backend, GGUF model: a LoRA adapter GGUF to apply (augment gguf --adapter)."
        ),
    ] = None,
    trust_remote_code: Annotated[
        bool | None, typer.Option("--trust-remote-code", help="local/vllm: run a model folder's own code.")
    ] = None,
    strategies: StrategiesOpt = None,
    prompts_dir: PromptsDirOpt = None,
    samples: SamplesOpt = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    budget_tokens: BudgetTokensOpt = None,
    budget_scope: BudgetScopeOpt = None,
    chunk_tokens: ChunkTokensOpt = None,
    chunk_overlap: ChunkOverlapOpt = None,
    tokenizer: TokenizerOpt = None,
    glob: GlobOpt = None,
    read_workers: ReadWorkersOpt = None,
    text_field: TextFieldOpt = None,
    concurrency: Annotated[int | None, typer.Option(help="Requests in flight.")] = None,
    max_retries: Annotated[int | None, typer.Option(help="Retries of a failed request.")] = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible server URL (default $OPENAI_BASE_URL).")
    ] = None,
    endpoint: EndpointOpt = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Variable holding the API key (OPENAI_API_KEY).")
    ] = None,
    http_client: Annotated[str | None, typer.Option(help="openai backend: aiohttp (fast) or sdk.")] = None,
    structured_output: Annotated[
        str | None, typer.Option(help="JSON-schema replies: auto, on or off.")
    ] = None,
    request_timeout: Annotated[float | None, typer.Option(help="Seconds per request.")] = None,
    batch_api: Annotated[
        bool | None,
        typer.Option(
            "--batch-api/--no-batch-api",
            help="openai backend: send requests through the server's Batch API (OpenAI: half the price, "
            "replies within 24 h); a re-run waits for batches already sent.",
        ),
    ] = None,
    extra_body: Annotated[
        str | None,
        typer.Option(
            help='openai backend: JSON fields added to every request, e.g. \'{"reasoning_effort": "low"}\'.'
        ),
    ] = None,
    chat_template_kwargs: Annotated[
        str | None,
        typer.Option(
            help="JSON variables for the chat template, e.g. '{\"enable_thinking\": false}' (Qwen3)."
        ),
    ] = None,
    rpm: Annotated[float | None, typer.Option(help="Requests-per-minute limit.")] = None,
    tpm: Annotated[float | None, typer.Option(help="Tokens-per-minute limit.")] = None,
    max_requests: Annotated[int | None, typer.Option(help="Budget: new model requests in this run.")] = None,
    max_tokens_total: Annotated[int | None, typer.Option(help="Budget: prompt + completion tokens.")] = None,
    max_parse_retries: Annotated[int | None, typer.Option(help="Re-asks after an unparsable reply.")] = None,
    mock_fail_rate: Annotated[
        float | None, typer.Option(help="Mock backend: fraction of calls that fail.")
    ] = None,
    mock_malformed_rate: Annotated[
        float | None, typer.Option(help="Mock backend: fraction of bad replies.")
    ] = None,
    curate: CurateOpt = None,
    decontaminate: DecontaminateOpt = None,
    semantic_dedup: SemanticOpt = None,
    judge: JudgeOpt = None,
    export: ExportOpt = None,
    fmt: FormatOpt = None,
    val_fraction: ValFractionOpt = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help="K/N: generate only part K (from 0) of N, into RUN/parts/; then 'augment merge RUN'."
        ),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="local (this process) or ray (a Ray Data job; extra 'ray').")
    ] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="--engine ray: cluster address (default: $RAY_ADDRESS or a local one).")
    ] = None,
    ray_actors: Annotated[
        int | None, typer.Option(help="--engine ray: generation actors (default: one per GPU, else 2).")
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Read DOCS, generate every strategy for every chunk, and export training shards.

    Exit code 0 only when the run is complete (every request answered); 1 when it stopped at a
    budget or requests failed in the backend (re-run the same command to continue), or when no
    reply gave a record.
    """
    from augment.config import load_config
    from augment.console import Reporter, err_console
    from augment.pipeline import Hooks
    from augment.pipeline import generate as run_generate
    from augment.pipeline.parts import Shard

    if engine not in ("local", "ray"):
        raise ConfigError(f"--engine must be local or ray, got '{engine}'")
    _writable(output)
    part = Shard.parse(shard) if shard is not None else None
    if part is not None and engine == "ray":
        raise ConfigError(
            "--shard splits a corpus over independent local jobs; --engine ray does that itself"
        )

    cfg = load_config(
        config,
        dict(
            backend=backend,
            model=model,
            strategies=strategies,
            prompt_style=prompt_style,
            threads=threads,
            context_tokens=context_tokens,
            device=device,
            lora=lora,
            trust_remote_code=trust_remote_code,
            prompts_dir=prompts_dir,
            samples=samples,
            seed=seed,
            budget_tokens=budget_tokens,
            budget_scope=budget_scope,
            chunk_tokens=chunk_tokens,
            chunk_overlap=chunk_overlap,
            tokenizer=tokenizer,
            glob=glob,
            read_workers=read_workers,
            text_field=text_field,
            concurrency=concurrency,
            max_retries=max_retries,
            mock_fail_rate=mock_fail_rate,
            mock_malformed_rate=mock_malformed_rate,
            base_url=base_url,
            endpoint=endpoint,
            api_key_env=api_key_env,
            http_client=http_client,
            structured_output=structured_output,
            request_timeout=request_timeout,
            batch_api=batch_api,
            extra_body=_json_option("--extra-body", extra_body),
            chat_template_kwargs=_json_option("--chat-template-kwargs", chat_template_kwargs),
            rpm=rpm,
            tpm=tpm,
            max_requests=max_requests,
            max_tokens_total=max_tokens_total,
            max_parse_retries=max_parse_retries,
            curate=curate,
            decontaminate=decontaminate,
            semantic_dedup=semantic_dedup,
            judge=judge,
            export=export,
            format=fmt,
            val_fraction=val_fraction,
        ),
    )
    if cfg.batch_api and engine == "ray":
        raise ConfigError("--batch-api with --engine ray: the server runs a batch; use --engine local")
    _default_read_workers(cfg)
    console = err_console()
    _on_interrupt(
        f"the replies received are cached in {output}; the same command resumes from them"
        + (" and waits for the batches already sent (they go on at the server)" if cfg.batch_api else "")
    )
    with Reporter(console, quiet=quiet, unit="documents" if engine == "ray" else "requests") as rep:
        hooks = Hooks(on_skip=rep.skip, on_read=rep.read, on_start=rep.start, on_advance=rep.advance)
        if engine == "ray":
            from augment.pipeline.ray_engine import generate_ray

            summary = generate_ray(docs, output, cfg, hooks, address=ray_address, actors=ray_actors)
        else:
            summary = run_generate(docs, output, cfg, hooks, shard=part)
    has_records = sum(summary.records.values()) > 0
    # a part is curated only after the merge: dedup must see every part's records
    finish = part is None and has_records
    curated = _curate(output, cfg, quiet or as_json, engine) if cfg.curate and finish else None
    shards = _export(output, cfg) if cfg.export and finish and not _none_kept(curated) else None
    if as_json:
        print(json.dumps(_batch_summary(summary, curated, shards, str(part) if part else None), indent=2))
    else:
        _print_generate_summary(summary, shards)
        if curated is not None:
            _print_curate_summary(curated)
        if part is not None and summary.complete:
            console.print(
                f"part {part} written to {summary.run_dir}; when every part is done: augment merge {output}",
                soft_wrap=True,
            )
        _say_left_aside(Path(summary.run_dir), cfg.strategies, console)
    if summary.state.budget_stopped:
        console.print(
            f"[yellow]stopped at the budget ({summary.state.budget_stopped}): {summary.not_sent} of "
            f"{summary.requests} requests not sent. Re-run to continue; replies received are cached.[/yellow]",
            soft_wrap=True,
        )
    elif summary.unanswered:
        reason, n = _backend_reason(summary.failures)
        console.print(
            f"[yellow]{summary.unanswered} requests failed in the backend ({n} of them: {reason}; "
            "see failures.jsonl). Re-run to send them again; replies received are cached.[/yellow]",
            soft_wrap=True,
        )
    _say_timeouts(summary.state, cfg, console)
    _say_server(summary, console)
    if not summary.complete:
        raise typer.Exit(1)
    _say_none_kept(curated, console)
    if part is None and not has_records and summary.failures:
        # a batch job must not pass with nothing written: say why, from the commonest reason
        reason, n = summary.failures.most_common(1)[0]
        console.print(
            f"[red]no records: no reply gave one ({n} of {summary.requests} requests: {reason}). "
            f"Nothing to curate or export; see {Path(summary.run_dir) / 'failures.jsonl'}.[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(1)


def _backend_reason(failures: Any) -> tuple[str, int]:
    """The commonest reason requests failed in the backend, and how many it holds."""
    backend = [(r, n) for r, n in failures.most_common() if r.startswith("backend_error: ")]
    reason, n = backend[0] if backend else next(iter(failures.most_common(1)), ("", 0))
    return reason.removeprefix("backend_error: "), n


def _default_read_workers(cfg: Any) -> None:
    """The command line reads slow files on the cores (up to 8) unless told otherwise; a script
    calling `generate` reads in its own process unless it sets read_workers."""
    if cfg.read_workers is None:
        from augment.ingest import auto_read_workers

        cfg.read_workers = auto_read_workers()


def _json_option(flag: str, value: str | None) -> Any:
    """A flag's JSON value (None when the flag was not given), or a one-line error naming it."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{flag}: not JSON ({e.msg} at column {e.colno}): {value}") from None


def _say_server(summary: Any, console: Any) -> None:
    """What the server refused and the run did without; replies that ended in the model's reasoning."""
    from augment.strategies.parsers import UNFINISHED_THOUGHT

    if summary.adjusted:
        console.print(
            f"[yellow]the server refused part of the requests as they were, so this run changed them: "
            f"{'; '.join(summary.adjusted)}.[/yellow]",
            soft_wrap=True,
        )
    thinking = summary.failures.get(f"parse_error: {UNFINISHED_THOUGHT}", 0)
    if thinking:
        console.print(f"[yellow]{thinking} replies: {UNFINISHED_THOUGHT}.[/yellow]", soft_wrap=True)


def _say_timeouts(state: Any, cfg: Any, console: Any) -> None:
    """One line when calls timed out: how far the requests in flight were cut, and what to pass."""
    slots = state.limits.slots if state.limits is not None else None
    if not state.timeouts or slots is None:
        return
    console.print(
        f"[yellow]{state.timeouts} calls got no reply within request_timeout "
        f"({cfg.request_timeout:g} s), so the requests in flight were cut from {slots.max} to "
        f"{slots.limit}: the server holds more than it answers in that time (one that answers one "
        f"at a time, as llama-cpp-python's does, is best run with --concurrency 1).[/yellow]",
        soft_wrap=True,
    )


def _say_left_aside(run_dir: Path, strategies: list[str], console: Any) -> None:
    """Name the records an earlier generate with other strategies left in RUN/generated/."""
    from rich.markup import escape

    from augment.shards import left_aside

    aside = left_aside(run_dir)
    if aside:
        console.print(
            f"[yellow]not used: {escape(', '.join(str(p) for p in aside))}, left by an earlier generate "
            f"with other strategies; to use them, run again with -s "
            f"{','.join([*strategies, *(p.stem for p in aside)])} (replies received are cached)[/yellow]",
            soft_wrap=True,
        )


def _batch_summary(summary: Any, curated: Any, shards: Any, part: str | None) -> dict[str, Any]:
    """What a batch job needs to know of a generate (or merge): counts, tokens, failures and paths."""
    from augment.shards import generated_files, left_aside

    run_dir = Path(summary.run_dir)
    out = {"run_dir": str(run_dir), "shard": part, **summary.to_dict()}
    out["paths"] = {
        "run_json": str(run_dir / "run.json"),
        "stats": str(run_dir / "stats.json"),
        "documents": str(run_dir / "documents.jsonl"),
        "generated": [str(p) for p in generated_files(run_dir)],
        "left_aside": [str(p) for p in left_aside(run_dir)],
        "failures": str(run_dir / "failures.jsonl"),
        "curated": str(run_dir / "curated" / "kept.jsonl") if curated is not None else None,
        "shards": str(Path(shards.out_dir) / "manifest.json") if shards is not None else None,
    }
    out["curate"] = curated.to_dict() if curated is not None else None
    out["export"] = (
        {"format": shards.format, "counts": shards.counts, "tokens": shards.tokens}
        if shards is not None
        else None
    )
    return out


def _none_kept(curated: Any) -> bool:
    """Whether curation ran and kept no record (there is nothing to export)."""
    return curated is not None and sum(curated.kept.values()) == 0


def _say_none_kept(curated: Any, console: Any) -> None:
    """One red line and exit 1 when curation dropped every record: a batch job must not pass."""
    if _none_kept(curated):
        console.print(
            f"[red]curation kept none of the {curated.total} records (the table says why); "
            "nothing was exported.[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(1)


def _export(run_dir: Path, cfg: Any):
    from augment.pipeline import versions
    from augment.shards import export as write_shards
    from augment.tokens import Tokenizer

    return write_shards(
        run_dir,
        fmt=cfg.format,
        file_formats=cfg.file_formats,
        val_fraction=cfg.val_fraction,
        shard_mb=cfg.shard_mb,
        tokenizer=Tokenizer(cfg.tokenizer),
        config=cfg.model_dump(mode="json"),
        versions=versions(),
    )


def _print_generate_summary(summary: Any, shards: Any) -> None:
    from augment.console import out_console, table

    st = summary.state
    rows: list[list[Any]] = [
        ["files", summary.files],
        *([["  read earlier (reads.sqlite)", summary.files_kept]] if summary.files_kept else []),
        ["documents", summary.documents],
        ["skipped", sum(x.files for x in summary.skipped)],
        ["chunks", summary.chunks],
        ["requests", summary.requests],
        ["  model calls (new)", st.calls],
        ["  from cache", st.cached],
        ["  not sent (budget)", summary.not_sent],
        ["failed requests", summary.failed_requests],
        ["retries", st.retries],
    ]
    rows += [[f"records: {name}", n] for name, n in summary.records.items()]
    for name, m in summary.multi_step.items():
        rows += [
            [f"{name}: tasks sent / found", f"{m['sent']} / {m['tasks']}"],
            [f"{name}: tokens spent / budget", f"{m['spent_tokens']} / {m['budget_tokens']}"],
        ]
    rows += [["prompt tokens", summary.prompt_tokens], ["completion tokens", summary.completion_tokens]]
    if summary.cost is not None:
        rows += [["cost", round(summary.cost, 4)]]
    rows += [["seconds", round(summary.seconds, 2)]]
    console = out_console()
    console.print(table(f"augment generate -> {summary.run_dir}", ["", "count"], rows))
    if shards is not None:
        console.print(
            f"shards: {shards.out_dir} ({shards.format}; train {shards.counts['train']}, val {shards.counts['val']}"
            f" records; {shards.tokens['train'] + shards.tokens['val']} tokens)",
            soft_wrap=True,
        )


def _curate(run_dir: Path, cfg: Any, quiet: bool, engine: str = "local"):
    from augment.console import Reporter, err_console
    from augment.curate import curate as run_curate

    with Reporter(err_console(), quiet=quiet, label="judging") as rep:
        return run_curate(run_dir, cfg, on_judge_start=rep.start, on_judge=rep.advance, engine=engine)


def _print_curate_summary(summary: Any) -> None:
    from augment.console import out_console, print_table

    d = summary.to_dict()
    reasons = list(d["by_reason"])
    rows = [
        [name, s["kept"], *[s["rejected"].get(r, 0) for r in reasons]] for name, s in d["by_strategy"].items()
    ]
    rows.append(["all", d["kept"], *[d["by_reason"][r] for r in reasons]])
    title = f"curate: kept {d['kept']} of {d['total']} records"
    print_table(out_console(), title, ["strategy", "kept", *reasons], rows)


def _run_config(run_dir: Path, config: Path | None, overrides: dict[str, Any]):
    """The config a run was generated with (run.json), then a config file, then flags."""
    from augment.config import build_config, given_flags, read_config_file
    from augment.pipeline.parts import require_run

    require_run(run_dir)
    values = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["config"]
    if config is not None:
        values.update(read_config_file(config))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return build_config(values, str(config) if config else "flags", flags=given_flags(overrides))


@app.command("merge")
def merge_cmd(
    run_dir: RunDirArg,
    curate: CurateOpt = None,
    export: ExportOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Combine the parts of a sharded run (generate --shard K/N) into RUN, then curate and export.

    Refuses, with exit code 1, unless every part is there and complete. Dedup runs on the merged
    records, so it is global across parts.
    """
    from augment.console import err_console, out_console
    from augment.pipeline.parts import merge

    merged = merge(run_dir)
    cfg = _run_config(run_dir, None, dict(curate=curate, export=export))
    has_records = sum(merged.records.values()) > 0
    curated = _curate(run_dir, cfg, quiet or as_json) if cfg.curate and has_records else None
    shards = _export(run_dir, cfg) if cfg.export and has_records and not _none_kept(curated) else None
    if as_json:
        out = merged.to_dict()
        out["stats"] = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
        out["curate"] = curated.to_dict() if curated is not None else None
        out["shards"] = str(Path(shards.out_dir) / "manifest.json") if shards is not None else None
        print(json.dumps(out, indent=2))
        _say_none_kept(curated, err_console())
        return
    out_console().print(
        f"merged {merged.parts} parts into {run_dir}: {merged.documents} documents, "
        f"{sum(merged.records.values())} records, {merged.failures} failures",
        soft_wrap=True,
    )
    if curated is not None:
        _print_curate_summary(curated)
    if shards is not None:
        out_console().print(
            f"shards: {shards.out_dir} ({shards.format}; train {shards.counts['train']}, val {shards.counts['val']})",
            soft_wrap=True,
        )
    _say_none_kept(curated, err_console())


@app.command("curate")
def curate_cmd(
    run_dir: RunDirArg,
    config: ConfigOpt = None,
    decontaminate: DecontaminateOpt = None,
    semantic_dedup: SemanticOpt = None,
    judge: JudgeOpt = None,
    judge_model: Annotated[str | None, typer.Option(help="Model for the judge (default: the run's).")] = None,
    near_threshold: Annotated[
        float | None, typer.Option(help="Jaccard similarity that counts as a duplicate.")
    ] = None,
    copy_threshold: Annotated[
        float | None, typer.Option(help="Share of n-grams copied from the source.")
    ] = None,
    engine: Annotated[
        str, typer.Option(help="local, or ray: near-duplicate search as Ray Data transforms.")
    ] = "local",
    quiet: QuietOpt = False,
) -> None:
    """Dedup and filter a run's generated records into curated/kept.jsonl and curated/rejected.jsonl."""
    from augment.pipeline.parts import merge_if_needed

    merge_if_needed(run_dir)  # a sharded run is merged first, so dedup is global
    cfg = _run_config(
        run_dir,
        config,
        dict(
            decontaminate=decontaminate,
            semantic_dedup=semantic_dedup,
            judge=judge,
            judge_model=judge_model,
            near_threshold=near_threshold,
            copy_threshold=copy_threshold,
        ),
    )
    if engine not in ("local", "ray"):
        raise ConfigError(f"--engine must be local or ray, got '{engine}'")
    _print_curate_summary(_curate(run_dir, cfg, quiet, engine))


@app.command("export")
def export_cmd(
    run_dir: RunDirArg,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="cpt ({'text'}) or chat ({'messages'}) shards; or qa: the run's question-answer "
            "records as a QA file for 'augment eval --qa' and '--decontaminate'.",
        ),
    ] = None,
    val_fraction: ValFractionOpt = None,
    shard_mb: ShardMbOpt = None,
    file_formats: Annotated[
        list[str] | None, typer.Option("--file-formats", help="jsonl, parquet or both.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="--format qa: the file to write (default RUN/qa.jsonl)."),
    ] = None,
    strategies: Annotated[
        list[str] | None,
        typer.Option(
            "--strategies", "-s", help="--format qa: only these strategies' records (comma-separated)."
        ),
    ] = None,
) -> None:
    """Write training shards and manifest.json from a run's (curated) records; --format qa: a QA file."""
    import typing

    from augment.config import RunConfig
    from augment.console import out_console
    from augment.pipeline.parts import merge_if_needed

    shard_formats = typing.get_args(RunConfig.model_fields["format"].annotation)  # the config's own list
    if fmt is not None and fmt != "qa" and fmt not in shard_formats:
        raise ConfigError(f"--format {fmt}: give {' or '.join(shard_formats)} (shards), or qa (a QA file)")
    if fmt != "qa" and (output is not None or strategies):
        raise ConfigError("--output and --strategies go with --format qa (shards are written to RUN/shards)")
    if fmt == "qa" and (val_fraction is not None or shard_mb is not None or file_formats):
        raise ConfigError("--val-fraction, --shard-mb and --file-formats are for shards, not --format qa")
    merge_if_needed(run_dir)
    if fmt == "qa":
        from augment.config import split_commas
        from augment.shards.qa import export_qa

        _writable(output, "file")
        qa = export_qa(run_dir, output, split_commas(strategies or []) or None)
        counts = ", ".join(f"{k} {v}" for k, v in qa.by_strategy.items())
        out_console().print(
            f"qa: {qa.path} ({qa.questions} questions on {qa.passages} passages, from {qa.source}; "
            f"{counts}{f'; {qa.merged} asked twice on a passage, merged' if qa.merged else ''})",
            soft_wrap=True,
        )
        return
    overrides = dict(format=fmt, val_fraction=val_fraction, shard_mb=shard_mb, file_formats=file_formats)
    cfg = _run_config(run_dir, None, overrides)
    shards = _export(run_dir, cfg)
    out_console().print(
        f"shards: {shards.out_dir} ({shards.format}, from {shards.source}; train {shards.counts['train']}, "
        f"val {shards.counts['val']} records; {len(shards.files)} files)",
        soft_wrap=True,
    )


@app.command("train")
def train_cmd(
    shards: Annotated[
        Path, typer.Argument(help="RUN/shards (written by generate/export; has manifest.json).")
    ],
    model: Annotated[
        str | None, typer.Option(help="Base model: folder, cached 'org/name', .gguf, or gemma3-270m.")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Checkpoint folder to write.")] = None,
    config: ConfigOpt = None,
    method: Annotated[str | None, typer.Option(help="lora or full.")] = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the data.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (2e-4 LoRA, 2e-5 full).")] = None,
    max_seq_len: Annotated[int | None, typer.Option(help="Tokens per sequence.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Sequences per device per step.")] = None,
    grad_accum: Annotated[int | None, typer.Option(help="Gradient accumulation steps.")] = None,
    micro_batch: Annotated[
        int | None,
        typer.Option(
            help="Sequences per forward pass, a divisor of --batch-size (default: as many as the free "
            "memory holds; the step is the same)."
        ),
    ] = None,
    replay: Annotated[
        float | None, typer.Option(help="Share of tokens from the raw documents (0-0.9).")
    ] = None,
    replay_corpus: Annotated[
        Path | None, typer.Option(help="Generic JSONL corpus ({'text'}) to replay.")
    ] = None,
    replay_title: Annotated[
        bool | None,
        typer.Option(
            "--replay-title/--no-replay-title",
            help="Open each replayed document with its title (cpt; chat replay names it in the prompt).",
        ),
    ] = None,
    replay_shuffle: Annotated[
        bool | None,
        typer.Option(
            "--replay-shuffle/--no-replay-shuffle",
            help="Replay each document's later copies with their sentences in a new order.",
        ),
    ] = None,
    answers_only: Annotated[
        bool | None,
        typer.Option(
            "--answers-only/--all-tokens",
            help="cpt shards: loss on the answers of 'Question: ...\\nAnswer: ...' records only.",
        ),
    ] = None,
    merge: Annotated[
        bool | None, typer.Option("--merge/--no-merge", help="LoRA: write merged weights.")
    ] = None,
    save_steps: Annotated[int | None, typer.Option(help="Checkpoint every N steps (for resuming).")] = None,
    snapshot_steps: Annotated[
        str | None,
        typer.Option(
            help="Also write the weights at these steps to OUTPUT/step-N, e.g. 24,48 (to eval each)."
        ),
    ] = None,
    resume: Annotated[
        bool | None, typer.Option("--resume/--no-resume", help="Continue from the last checkpoint.")
    ] = None,
    overwrite: Annotated[
        bool | None,
        typer.Option(
            "--overwrite",
            help="Train again into an OUTPUT that holds a finished run with other settings (replaced).",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    bf16: Annotated[
        str | None,
        typer.Option(help="auto (on a GPU that has it), on (a CPU: bf16 autocast, fp32 weights) or off."),
    ] = None,
    trust_remote_code: Annotated[
        bool | None, typer.Option("--trust-remote-code", help="Run the model repository's own code.")
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Fine-tune a causal LM on the shards (LoRA or full), so the documents end up in its weights."""
    from augment.config import build_config, given_flags, read_config_file
    from augment.console import err_console, out_console
    from augment.train.args import TrainConfig

    values: dict[str, Any] = read_config_file(config) if config else {}
    flags = dict(
        shards=shards,
        model=model,
        output=output,
        method=method,
        epochs=epochs,
        max_steps=max_steps,
        lr=lr,
        max_seq_len=max_seq_len,
        batch_size=batch_size,
        grad_accum=grad_accum,
        micro_batch=micro_batch,
        replay=replay,
        replay_corpus=replay_corpus,
        replay_title=replay_title,
        replay_shuffle=replay_shuffle,
        answers_only=answers_only,
        merge=merge,
        save_steps=save_steps,
        snapshot_steps=snapshot_steps,
        resume=resume,
        overwrite=overwrite,
        seed=seed,
        bf16=bf16,
        trust_remote_code=trust_remote_code,
    )
    values.update({k: v for k, v in flags.items() if v is not None})
    for key, flag in (("model", "--model"), ("output", "--output/-o")):
        if key not in values:
            raise ConfigError(f"augment train needs {flag}")
    _writable(Path(values["output"]))
    cfg = build_config(values, str(config) if config else "flags", TrainConfig, given_flags(flags))
    console = err_console()

    def on_log(e: dict[str, Any]) -> None:
        if quiet:
            return
        rate = f", {e['tokens_per_s']:,.0f} tokens/s" if e["tokens_per_s"] else ""
        console.print(
            f"train: step {e['step']}/{e['max_steps']}, loss {e['loss']:.4f}, {e['tokens']:,} tokens{rate}",
            soft_wrap=True,
        )

    def on_plan(plan: Any) -> None:
        if quiet or plan.passes == 1:
            return
        gb = 1e9
        free = f", {plan.free_bytes / gb:.1f} GB free" if plan.free_bytes is not None else ""
        why = (
            f"--micro-batch {cfg.micro_batch}"
            if cfg.micro_batch is not None
            else f"one of {cfg.max_seq_len} tokens needs about {plan.sequence_bytes / gb:.1f} GB{free}; "
            "--micro-batch sets it"
        )
        console.print(
            f"train: {cfg.batch_size} sequences a step in {plan.passes} passes of {plan.size} ({why})",
            soft_wrap=True,
        )

    from augment.train.trainer import train

    _on_interrupt(
        f"the same command resumes from the last checkpoint in {cfg.output / 'checkpoints'}, if one "
        f"was saved (every {cfg.save_steps} steps, --save-steps)"
    )
    result = train(cfg, on_log=on_log, on_plan=on_plan)
    if result.already_trained:
        loss = f", final loss {result.final_loss:.4f}" if result.final_loss is not None else ""
        out_console().print(
            f"{result.output} is already trained with these settings on these shards ({result.steps} steps"
            f"{loss}): nothing to do (--overwrite trains it again)",
            soft_wrap=True,
        )
        return
    # chat shards always train on the assistant turn; --answers-only splits cpt text
    answers_only = cfg.answers_only and result.format == "cpt"
    if answers_only and result.answer_only_rows == 0:
        console.print(
            f"warning: --answers-only: no row of {cfg.shards} is a question-answer record "
            "('Question: ...\\nAnswer: ...'), so every row trained on all its tokens but BOS",
            soft_wrap=True,
        )
    answers = (
        f", {result.answer_only_rows} of {result.rows} rows on their answer only" if answers_only else ""
    )
    resumed = f", resumed from {result.resumed_from}" if result.resumed_from else ""
    eval_part = f", eval loss {result.eval_loss:.4f}" if result.eval_loss is not None else ""
    out_console().print(
        f"trained {cfg.method} on {cfg.shards}: {result.steps} steps, {result.tokens:,} tokens, "
        f"{result.seconds:.1f} s, final loss {result.final_loss:.4f}{eval_part}{answers}{resumed} -> {result.output}",
        soft_wrap=True,
    )
    from augment.models import GEMMA_ALIAS

    if cfg.model == GEMMA_ALIAS or str(cfg.model).endswith(".gguf"):  # trained from a GGUF
        lora = " (or --adapter: the LoRA alone, for the base file)" if cfg.method == "lora" else ""
        out_console().print(f"for llama.cpp and Ollama: augment gguf {result.output}{lora}", soft_wrap=True)


@app.command("average")
def average_cmd(
    checkpoints: Annotated[
        list[Path],
        typer.Argument(
            help="Checkpoint folders of one model, e.g. CKPT/step-48 CKPT (train --snapshot-steps)."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="New folder for the averaged weights.")],
    weights: Annotated[
        str | None, typer.Option(help="Comma-separated weight per checkpoint (default: equal), e.g. 1,3.")
    ] = None,
) -> None:
    """Average the weights of checkpoints of one model (a run's last snapshots and its final weights)."""
    from augment.console import out_console
    from augment.train.average import average_checkpoints

    shares = None
    if weights is not None:
        try:
            shares = [float(w) for w in weights.split(",")]
        except ValueError:
            raise ConfigError(f"--weights: {weights!r} is not a comma-separated list of numbers") from None
    _writable(output)
    result = average_checkpoints(checkpoints, output, shares)
    out_console().print(
        f"averaged {len(checkpoints)} checkpoints: {result.tensors} tensors, "
        f"{result.parameters:,} parameters in {', '.join(result.files)} -> {result.output}",
        soft_wrap=True,
    )


@app.command("gguf")
def gguf_cmd(
    checkpoint: Annotated[
        Path, typer.Argument(help="A checkpoint folder of augment train (or a snapshot, or an average).")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The GGUF file to write (default: beside CKPT, CKPT-TYPE.gguf)."),
    ] = None,
    type_: Annotated[
        str,
        typer.Option(
            "--type", help="Weight matrices as f16, bf16, q8_0, f32, or q4_k_m, q5_k_m, q6_k (llama.cpp's)."
        ),
    ] = "f16",
    base: Annotated[
        str | None,
        typer.Option(help="The GGUF it was trained from (default: the model its train.json names)."),
    ] = None,
    adapter: Annotated[
        bool,
        typer.Option(
            "--adapter",
            help="LoRA checkpoint: write the adapter alone (llama.cpp's LoRA GGUF, a few MB), to run on "
            "the base GGUF it was trained from.",
        ),
    ] = False,
    trust_remote_code: Annotated[bool, typer.Option(help="Allow model code from the checkpoint.")] = False,
) -> None:
    """Write a checkpoint trained from a GGUF as a GGUF file, for llama.cpp, Ollama and --backend local."""
    from augment.console import out_console
    from augment.train.gguf import ADAPTER_TYPES, TYPES, write_adapter_gguf, write_gguf

    if type_ not in (ADAPTER_TYPES if adapter else TYPES):
        what = "an adapter is written as" if adapter else "not one of"
        raise ConfigError(f"--type: {type_!r} is {what} {', '.join(ADAPTER_TYPES if adapter else TYPES)}")
    checkpoint = checkpoint.expanduser()
    # beside the folder, not in it: eval keys a model's scores by its folder's files
    name = f"{checkpoint.resolve().name}-{'lora-' if adapter else ''}{type_}.gguf"
    output = output or checkpoint.resolve().parent / name
    if output.is_dir():
        raise ConfigError(f"--output: {output} is a folder; name the .gguf file to write")
    write = write_adapter_gguf if adapter else write_gguf
    result = write(checkpoint, output, qtype=type_, base=base, trust_remote_code=trust_remote_code)
    console = out_console()
    if adapter:
        console.print(
            f"wrote {result.output}: LoRA adapter, {result.tensors // 2} matrices, {result.parameters:,} "
            f"parameters, {result.bytes / 1e6:,.1f} MB ({result.qtype}) for {result.base}\n"
            f"run it on that file: llama-server -m {result.base} --lora {result.output} "
            f"(Ollama: FROM {result.base} and ADAPTER {result.output})",
            soft_wrap=True,
        )
        return
    console.print(
        f"wrote {result.output}: {result.tensors} tensors, {result.parameters:,} parameters, "
        f"{result.bytes / 1e6:,.0f} MB ({result.qtype}; settings and tokenizer from {result.base.name})",
        soft_wrap=True,
    )
    if type_ == "q4_k_m":  # bench/gguf_types.sh
        console.print(
            "[yellow]q4_k_m rounds away much of what fine-tuning changed: on Gemma 3 270M it kept 10 of "
            "the trained model's 60 answers (F1 0.426 -> 0.262); q6_k kept 59 (README).[/yellow]",
            soft_wrap=True,
        )
        from augment.train.gguf import adapter_folder

        try:
            adapter_folder(checkpoint)
        except AugmentError:
            return
        console.print(
            f"[yellow]{checkpoint} is a LoRA: augment gguf --adapter writes it alone (a few MB), which "
            "llama.cpp applies to the base file unrounded (README).[/yellow]",
            soft_wrap=True,
        )


@app.command("eval")
def eval_cmd(
    model: Annotated[
        list[str], typer.Option("--model", "-m", help="Model to score; repeat to compare (first = baseline).")
    ],
    qa: Annotated[
        Path,
        typer.Option(help="QA file: passages with 'questions', or questions; a line each, or a JSON array."),
    ],
    mode: Annotated[
        str, typer.Option(help="closed (question only) or open (passage in context).")
    ] = "closed",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Folder for report.json/.md/.png; its answers.sqlite keeps every answer scored, "
            "so a killed or repeated eval scores only what it has not.",
        ),
    ] = None,
    with_title: Annotated[
        bool, typer.Option("--with-title", help="Closed-book: give the passage title.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Questions per generation batch (transformers; 8).")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer generated.")] = 32,
    trust_remote_code: Annotated[
        bool,
        typer.Option("--trust-remote-code", help="Run the model folder's own code (only one you trust)."),
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            help="auto (vLLM when installed and a GPU is visible, else transformers), transformers, vllm, "
            "or server (the models an OpenAI-compatible server serves, by name: --base-url).",
        ),
    ] = "auto",
    base_url: Annotated[
        str | None,
        typer.Option(help="--engine server: the server's URL (default $OPENAI_BASE_URL, else OpenAI's)."),
    ] = None,
    endpoint: Annotated[
        str,
        typer.Option(help="--engine server: completions (answers and likelihoods) or chat (answers only)."),
    ] = "completions",
    concurrency: Annotated[
        int | None,
        typer.Option(
            help="--engine server: requests in flight (64; 1 for a server that answers one at a time, "
            "as llama-cpp-python's does).",
        ),
    ] = None,
    judge: Annotated[
        bool, typer.Option("--judge", help="Also have a model grade each answer against the gold answers.")
    ] = False,
    judge_backend: Annotated[
        str | None, typer.Option(help="Grader's backend: auto, local, vllm, openai or mock.")
    ] = None,
    judge_model: Annotated[
        str | None, typer.Option(help="Grader model: a server's model name, or a .gguf file or model folder.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Run config for the grader and --engine server (base_url, api_key_env, concurrency, rpm...).",
        ),
    ] = None,
    snapshots: Annotated[
        bool,
        typer.Option(
            "--snapshots",
            help="Also score the step-N/ snapshots in each model folder (train --snapshot-steps).",
        ),
    ] = False,
    shots: Annotated[
        Path | None,
        typer.Option(
            help="QA file of worked examples put before every question, for every model alike (few-shot); "
            "none of its questions may be among the evaluated ones.",
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Closed-book QA before and after training: EM, F1, containment and answer likelihood, with intervals."""
    from augment.backends.openai import base_url_of
    from augment.console import Counter, err_console, out_console, print_table
    from augment.eval.metrics import normalize_answer
    from augment.eval.report import build_report, fmt, fmt_diff, write_report
    from augment.eval.runner import score_model, score_model_vllm, vllm_available, with_snapshots
    from augment.eval.server import check_served, score_model_server
    from augment.eval.store import ANSWERS, AnswerStore
    from augment.models import locate_model
    from augment.qafile import load_qa

    if mode not in ("closed", "open"):
        raise ConfigError(f"--mode must be closed or open, got '{mode}'")
    _writable(output)
    _at_least_one(limit=limit, batch_size=batch_size, max_new_tokens=max_new_tokens, concurrency=concurrency)
    if engine not in ("auto", "transformers", "vllm", "server"):
        raise ConfigError(f"--engine must be auto, transformers, vllm or server, got '{engine}'")
    use_vllm = engine == "vllm" or (engine == "auto" and vllm_available())
    if engine != "server" and (base_url or endpoint != "completions" or concurrency):
        raise ConfigError("--base-url, --endpoint and --concurrency are for --engine server")
    if endpoint not in ("completions", "chat"):
        raise ConfigError(f"--endpoint must be completions or chat, got '{endpoint}'")
    if not judge and (judge_backend or judge_model):
        raise ConfigError("--judge-backend and --judge-model set up the grader: add --judge")
    if config and not judge and engine != "server":
        raise ConfigError("--config sets up the grader (--judge) or --engine server; this eval has neither")
    server_config = None
    if engine == "server":
        from augment.config import load_config

        if batch_size is not None or trust_remote_code:
            raise ConfigError(
                "--batch-size and --trust-remote-code are for the engines that load the weights here; "
                "--concurrency sets how many requests the server gets at once"
            )
        if snapshots:
            raise ConfigError(
                "--snapshots scores model folders; --engine server scores the names a server serves"
            )
        server_config = load_config(
            config, {"backend": "openai", "base_url": base_url, "concurrency": concurrency}
        )
        server_config = server_config.model_copy(update={"endpoint": endpoint})
    judge_config = None
    if judge:  # check the grader's settings before any model is scored
        from augment.backends import available_backends
        from augment.config import load_config

        judge_config = load_config(
            config,
            {"backend": judge_backend, "model": judge_model},
            {"backend": "--judge-backend", "model": "--judge-model"},
        )
        if judge_config.backend not in ("auto", *available_backends()):
            raise ConfigError(
                f"--judge-backend: unknown backend '{judge_config.backend}'. "
                f"Available: auto, {', '.join(available_backends())}"
            )
    if snapshots:
        model = with_snapshots(model)
    twice = sorted({name for name in model if model.count(name) > 1})
    if twice:  # its answers would share one column of predictions.json
        raise ConfigError(f"--model {twice[0]} is given twice; give each model once")
    if server_config is not None:  # every model exists before the first is scored
        check_served(model, server_config)
    for name in model if server_config is None else []:
        locate_model(name)
    items = load_qa(qa)[:limit]
    bare = sum(not it.passage.strip() for it in items)
    if mode == "open" and bare:  # it would be asked closed-book under the open-book name
        raise ConfigError(
            f"--mode open puts each question's passage before it; {bare} of the {len(items)} questions "
            f"in {qa} have none (a passage line's 'text')"
        )
    if with_title and mode == "closed" and not any(it.title for it in items):
        raise ConfigError(f"--with-title: no question in {qa} has a title (a passage line's 'title')")
    examples = load_qa(shots) if shots is not None else []
    if shots is not None:
        if not examples:
            raise ConfigError(f"{shots}: no questions to use as worked examples")
        asked = {normalize_answer(it.question) for it in items}
        leaked = sum(normalize_answer(s.question) in asked for s in examples)
        if leaked:
            raise ConfigError(
                f"{shots}: {leaked} of its {len(examples)} questions are also evaluated (from {qa}); "
                "an example must not give away an answer"
            )
    console = err_console()
    results = []
    # with -o, every answer is stored as it is scored: a killed eval resumes, a rerun reuses them
    store = AnswerStore(output / ANSWERS) if output is not None else None
    _on_interrupt(
        f"the answers scored so far are in {output / ANSWERS}; the same command scores only the rest"
        if output is not None
        else "without -o no answer was kept"
    )
    common = dict(
        mode=mode, with_title=with_title, max_new_tokens=max_new_tokens, shots=examples, store=store
    )
    local = dict(common, trust_remote_code=trust_remote_code)  # the engines that load the weights here
    try:
        for name in model:
            with Counter(console, f"eval {name}", "questions", quiet) as counter:
                if server_config is not None:
                    scored = score_model_server(
                        name, items, server_config, on_progress=counter.update, **common
                    )
                elif use_vllm:
                    scored = score_model_vllm(name, items, on_progress=counter.update, **local)
                else:
                    scored = score_model(
                        name, items, batch_size=batch_size or 8, on_progress=counter.update, **local
                    )
            for warning in scored.warnings:
                console.print(f"warning: {warning}", soft_wrap=True)
            if scored.reused and not quiet:
                console.print(
                    f"eval {name}: {scored.reused} of {len(items)} answers reused from {store.path} "
                    "(delete it to score them again)",
                    soft_wrap=True,
                )
            results.append(scored)
    finally:
        if store is not None:
            store.close()
    if judge_config is not None:
        _grade_results(results, items, judge_config, output, console, quiet)
    answered_by = "vllm" if use_vllm else "transformers"
    if server_config is not None:
        answered_by = f"server {base_url_of(server_config)} ({endpoint})"
    report = build_report(
        str(qa), mode, len(items), results, str(shots) if shots else None, len(examples), answered_by
    )
    metrics = report["metrics"]
    rows = []
    for m in report["models"]:
        s = m["scores"]
        rows.append([m["model"], *[fmt((s[k]["mean"], s[k]["lo"], s[k]["hi"])) for k in metrics]])
        if m["difference_vs_first"]:
            d = m["difference_vs_first"]
            rows.append(
                [
                    "  difference",
                    *[fmt_diff(d[k]) for k in metrics],
                ]
            )
    title = f"{mode}-book QA, {len(items)} questions (95 % intervals)"
    print_table(out_console(), title, ["model", *metrics], rows)
    for r in results:
        if r.ungraded:
            why = next(x for x in r.reasons if x.startswith("grader failed"))
            console.print(
                f"warning: the grader gave no verdict on {r.ungraded} of {r.model}'s {len(items)} answers, "
                f"left out of its judge score ({why.removeprefix('grader failed: ')}); a grader must follow "
                "prompts/_grade.md: an instruction-tuned model, e.g. --judge-backend openai --judge-model NAME",
                soft_wrap=True,
            )
    if output is not None:
        written = write_report(report, output, results, items)
        out_console().print(f"report: {', '.join(str(p) for p in written)}", soft_wrap=True)


def _grade_results(results: list, items: list, config, output: Path | None, console, quiet: bool) -> None:
    """`augment eval --judge`: grade every model's answers with `config`'s backend; replies cached in
    OUTPUT/grades.sqlite (a temporary folder without -o)."""
    import tempfile

    from augment.backends import get_backend
    from augment.eval.judge import grade_answers

    def progress(done: int, total: int) -> None:
        if not quiet and (done == total or done % 50 == 0):
            console.print(f"judge: {done}/{total} answers graded")

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "grades.sqlite"
        if output is not None:
            output.mkdir(parents=True, exist_ok=True)
            cache = output / "grades.sqlite"
        graded = grade_answers(
            items, [r.predictions for r in results], get_backend(config), config, cache, progress
        )
    for r, (grades, reasons) in zip(results, graded, strict=True):
        r.add_grades(grades, reasons)


@app.command("plan")
def plan_cmd(
    docs: DocsArg,
    config: ConfigOpt = None,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    prompt_style: PromptStyleOpt = None,
    strategies: StrategiesOpt = None,
    prompts_dir: PromptsDirOpt = None,
    samples: SamplesOpt = None,
    budget_tokens: BudgetTokensOpt = None,
    budget_scope: BudgetScopeOpt = None,
    chunk_tokens: ChunkTokensOpt = None,
    chunk_overlap: ChunkOverlapOpt = None,
    tokenizer: TokenizerOpt = None,
    context_tokens: Annotated[
        int | None, typer.Option(help="local/vllm: the context window prompts and replies must fit.")
    ] = None,
    glob: GlobOpt = None,
    read_workers: ReadWorkersOpt = None,
    text_field: TextFieldOpt = None,
    endpoint: EndpointOpt = None,
    price_prompt: Annotated[
        float | None, typer.Option(help="Price per million prompt tokens, for the cost column.")
    ] = None,
    price_completion: Annotated[
        float | None, typer.Option(help="Price per million completion tokens.")
    ] = None,
    batch_api: Annotated[
        bool | None,
        typer.Option("--batch-api/--no-batch-api", help="Also say the batches the requests would take."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Estimate what 'generate' would send (requests, tokens, cost per strategy) without calling a model."""
    from augment.config import load_config
    from augment.console import err_console, out_console, table
    from augment.plan import plan

    cfg = load_config(
        config,
        dict(
            backend=backend,
            model=model,
            prompt_style=prompt_style,
            strategies=strategies,
            prompts_dir=prompts_dir,
            samples=samples,
            budget_tokens=budget_tokens,
            budget_scope=budget_scope,
            chunk_tokens=chunk_tokens,
            chunk_overlap=chunk_overlap,
            tokenizer=tokenizer,
            context_tokens=context_tokens,
            glob=glob,
            read_workers=read_workers,
            text_field=text_field,
            endpoint=endpoint,
            price_prompt_per_m=price_prompt,
            price_completion_per_m=price_completion,
            batch_api=batch_api,
        ),
        {"price_prompt_per_m": "--price-prompt", "price_completion_per_m": "--price-completion"},
    )
    _default_read_workers(cfg)
    from rich.markup import escape

    errors = err_console()
    result = plan(
        docs, cfg, on_skip=lambda s: errors.print(f"[yellow]{escape(str(s))}[/yellow]", soft_wrap=True)
    )
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    priced = result.total.cost is not None
    rows = [
        [s.strategy, s.requests, s.prompt_tokens, s.completion_tokens, s.tokens]
        + ([round(s.cost or 0.0, 4)] if priced else [])
        for s in [*result.strategies, result.total]
    ]
    columns = ["strategy", "requests", "prompt tokens", "completion tokens (est.)", "tokens"]
    out_console().print(
        table(
            f"plan: {result.documents} documents, {result.chunks} chunks, {result.style} prompts "
            f"({result.style_reason})",
            columns + (["cost"] if priced else []),
            rows,
        )
    )
    _say_context(result, cfg, out_console())
    if result.batches:
        b = result.batches
        out_console().print(
            f"--batch-api: at least {b['batches']:,} batch{'es' if b['batches'] != 1 else ''} of up to "
            f"{b['requests_per_batch']:,} requests, {b['at_once']} out at once, each ~"
            f"{b['prompt_tokens_per_batch']:,} prompt tokens: the server's queue must take that many "
            "(OpenAI: the enqueued-token limit of your tier and model); a batch it refuses goes again "
            "in halves, or set batch_requests lower",
            soft_wrap=True,
        )


def _say_context(result: Any, cfg: Any, console: Any) -> None:
    """What a model's context must hold, and where an in-process model's context_tokens is short."""
    from augment.backends.base import backend_name

    counted = "counted with the tokenizer setting" if cfg.tokenizer != "approx" else "estimated"
    need = (
        f"the longest prompt is {result.longest_prompt} tokens ({counted}) and a reply may take up "
        f"to {result.most_reply}"
    )
    if result.context is None:
        if backend_name(cfg) == "mock":
            return
        hold = result.longest_prompt + result.most_reply
        console.print(f"{need}: a server's context should hold {hold}.", soft_wrap=True)
    elif result.too_long:
        fix = (
            "use a model with a longer context"
            if "positions" in result.context_name
            else "raise context_tokens"
        )
        console.print(
            f"[yellow]{need}: {result.too_long} of {result.total.requests} requests leave too little "
            f"room for a reply in {result.context_name} and would fail; lower chunk_tokens, "
            f"or {fix}.[/yellow]",
            soft_wrap=True,
        )
    elif result.cut_replies:
        console.print(
            f"{need}: {result.cut_replies} requests would get less than their max_tokens in "
            f"{result.context_name} (the room their prompt leaves).",
            soft_wrap=True,
        )
    else:
        console.print(f"{need}: {result.context_name} holds every request.", soft_wrap=True)


@app.command()
def stats(
    run_dir: RunDirArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Documents, chunks, records per strategy, failures by reason and token totals of a run."""
    from augment.console import out_console, table
    from augment.ingest import Skipped, skipped_lines
    from augment.stats import run_stats

    s = run_stats(run_dir)
    console = out_console()
    if as_json:
        print(json.dumps(s, indent=2))
        return
    console.print(
        table(
            f"run {s['run_dir']} ({s['backend']}: {s['model']})",
            ["", "count"],
            [
                ["documents", s["documents"]],
                ["skipped files", sum(x.get("files", 1) for x in s["skipped"])],
                ["chunks", s["chunks"]],
                ["requests", s["requests"]],
                ["failed requests", s["failed_requests"]],
                ["retries", s["retries"]],
                ["prompt tokens", s["usage"]["prompt_tokens"]],
                ["completion tokens", s["usage"]["completion_tokens"]],
                *([["cost", s["cost"]]] if s["cost"] is not None else []),
                ["complete", "yes" if s["complete"] else f"no ({_why_incomplete(s)})"],
            ],
        )
    )
    console.print(
        table(
            "records per strategy",
            ["strategy", "records", "tokens"],
            [[k, v, s["record_tokens"][k]] for k, v in s["records"].items()],
        )
    )
    if s["multi_step"]:
        console.print(
            table(
                "multi-step strategies",
                ["strategy", "chunks", "tasks found", "tasks sent", "tokens spent", "budget"],
                [
                    [k, m["chunks"], m["tasks"], m["sent"], m["spent_tokens"], m["budget_tokens"]]
                    for k, m in s["multi_step"].items()
                ],
            )
        )
    if s["failures"]:
        console.print(
            table(
                "failures: requests and items, by reason",
                ["reason", "count"],
                [[k, v] for k, v in s["failures"].items()],
            )
        )
    if s["curated"]:
        c = s["curated"]
        console.print(
            table(
                f"curated: kept {c['kept']} of {c['total']}",
                ["dropped because", "records"],
                [[k, v] for k, v in c["by_reason"].items()],
            )
        )
    if s["adjusted"]:
        console.print(f"the server refused part of the requests: {'; '.join(s['adjusted'])}", soft_wrap=True)
    if s["batches"]:
        rows = [[b["batch"], b["requests"]] for b in s["batches"]]
        console.print(table("batches sent to the Batch API (RUN/batches.jsonl)", ["batch", "requests"], rows))
    if s["skipped"]:
        console.print(
            table(
                "skipped inputs",
                ["path", "reason"],
                [list(row) for row in skipped_lines([Skipped(x["path"], x["reason"]) for x in s["skipped"]])],
            )
        )
    if s["shards"]:
        c, t = s["shards"]["counts"], s["shards"]["tokens"]
        console.print(
            table(
                f"shards ({s['shards']['format']})",
                ["split", "records", "tokens"],
                [["train", c["train"], t["train"]], ["val", c["val"], t["val"]]],
            )
        )


@app.command("batches")
def batches_cmd(
    folder: Annotated[
        Path,
        typer.Argument(help="A run directory, or an eval's output: the folder that holds batches.jsonl."),
    ],
    cancel: Annotated[
        bool, typer.Option("--cancel", help="Cancel the batches not ended (a re-run sends the rest again).")
    ] = False,
    config: ConfigOpt = None,
    base_url: Annotated[
        str | None, typer.Option(help="The server the batches went to (default: the run's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the batches as JSON.")] = False,
) -> None:
    """A run's Batch API batches (--batch-api) as the server has them now; --cancel stops them.

    Cancelled batches stop at the server (OpenAI bills what they answered); the same generate
    command takes what they answered and sends the rest again."""
    from augment.backends.openai import base_url_of, survey_batches
    from augment.backends.openai_batch import ENDED
    from augment.config import build_config, given_flags, read_config_file
    from augment.console import out_console, table

    ledger = folder / "batches.jsonl"
    if not ledger.is_file():
        raise AugmentError(f"{ledger}: not found (no batch was sent from {folder} with --batch-api)")
    overrides = {"base_url": base_url}
    if (folder / "run.json").is_file():
        cfg = _run_config(folder, config, overrides)
    else:  # an eval's output: the grader's config
        values = read_config_file(config) if config is not None else {}
        values.update({k: v for k, v in overrides.items() if v is not None})
        cfg = build_config(values, str(config) if config else "flags", flags=given_flags(overrides))
    rows = survey_batches(folder, cfg, cancel=cancel)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    console = out_console()
    console.print(
        table(
            f"batches of {folder} at {base_url_of(cfg)}",
            ["batch", "sent", "requests", "status", "answered", "failed"],
            [
                [
                    r["batch"],
                    _local_time(r.get("created_at")),
                    r["requests"],
                    r["status"] + (" (cancelled now)" if r["cancelled"] else ""),
                    r.get("answered", r.get("error", "")),
                    r.get("failed", ""),
                ]
                for r in rows
            ],
        )
    )
    running = [r for r in rows if r["status"] not in (*ENDED, "unknown")]
    n = f"{len(running)} batch{'es' if len(running) != 1 else ''}"
    if cancel and running:
        console.print(
            f"{n} cancelled or cancelling: the server stops them; the same generate command takes "
            "what they answered and sends the rest again"
        )
    elif running:
        console.print(f"{n} not ended: the same generate command waits for them (--cancel stops them)")


def _local_time(seconds: float | None) -> str:
    import datetime

    return "" if seconds is None else datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


def _at_least_one(**flags: int | None) -> None:
    """A count flag below 1 (a flag left out is None) is a one-line error naming it."""
    for name, value in flags.items():
        if value is not None and value < 1:
            flag = f"-{name}" if len(name) == 1 else f"--{name.replace('_', '-')}"
            raise ConfigError(f"{flag} must be at least 1, got {value}")


def _why_incomplete(s: dict[str, Any]) -> str:
    if s["budget_stopped"]:
        return s["budget_stopped"]
    return f"{s['unanswered']} requests unanswered" if s.get("unanswered") else "interrupted"


@app.command()
def show(
    run_dir: RunDirArg,
    strategy: Annotated[str | None, typer.Option("--strategy", "-s", help="Only this strategy.")] = None,
    rejected: Annotated[bool, typer.Option("--rejected", help="Records curation dropped, with why.")] = False,
    reason: Annotated[str | None, typer.Option(help="Only records dropped for this reason.")] = None,
    n: Annotated[int, typer.Option("-n", help="How many records.")] = 5,
) -> None:
    """Sample records of a run: their training text and, for dropped ones, the reason."""
    from rich.panel import Panel

    from augment.console import out_console
    from augment.stats import sample_records, what_is_there

    _at_least_one(n=n)
    records = sample_records(run_dir, strategy=strategy, rejected=rejected, reason=reason, n=n)
    console = out_console()
    if not records:
        there = what_is_there(run_dir, rejected=rejected or bool(reason))
        console.print(f"no matching records ({there})", markup=False, soft_wrap=True)
        return
    for rec in records:
        why = (
            f" | dropped: {rec['reason']}" + (f" (duplicate of {rec['dup_of']})" if rec.get("dup_of") else "")
            if rec.get("reason")
            else ""
        )
        title = f"{rec['strategy']}{'/' + rec['variant'] if rec.get('variant') else ''} | {rec['id']} | chunk {rec['chunk_id']}{why}"
        console.print(Panel(rec["text"], title=title, title_align="left"), markup=False)


@app.command("strategies")
def strategies_cmd(prompts_dir: PromptsDirOpt = None) -> None:
    """List the strategies (prompt files) that 'generate' can run; add one by adding a file."""
    from augment.backends import available_backends
    from augment.console import out_console, table
    from augment.strategies import builtin_prompts_dir, discover_prompts, load_strategy

    rows = []
    for name, path in discover_prompts(prompts_dir).items():
        s = load_strategy(path, prompts_dir)
        origin = "built-in" if path.parent == builtin_prompts_dir() else "prompts-dir"
        rows.append(
            [
                name,
                s.version,
                s.header.kind,
                s.header.parser,
                ", ".join(s.header.variants) or "-",
                s.header.description,
                origin,
            ]
        )
    console = out_console()
    columns = ["name", "version", "kind", "parser", "variants", "description", "from"]
    if console.width >= 120:
        console.print(table("strategies", columns, rows))
    else:  # seven columns in 80 would wrap the description a word a line and cut the names
        import textwrap

        def wrap(text: str, indent: str) -> str:
            return textwrap.fill(
                text, console.width, initial_indent=indent, subsequent_indent="    ", break_on_hyphens=False
            )

        for name, version, kind, parser, variants, description, origin in rows:
            more = f"; variants: {variants}" if variants != "-" else ""
            head = f"{name}  version {version}, kind {kind}, parser {parser}, {origin}{more}"
            console.print(wrap(head, ""), markup=False, soft_wrap=True)
            console.print(wrap(description, "    "), markup=False, soft_wrap=True)
    console.print(f"built-in prompts: {builtin_prompts_dir()}", soft_wrap=True)
    if prompts_dir:
        console.print(
            f"prompts-dir: {prompts_dir} (its files add strategies or override built-ins)", soft_wrap=True
        )
    console.print(f"backends: {', '.join(available_backends())}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and turns expected errors into one red line and an exit code."""
    from rich.markup import escape

    _interrupt_hint.clear()
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="augment", standalone_mode=False)
    except AugmentError as e:
        if os.environ.get("AUGMENT_DEBUG"):
            raise
        from augment.console import err_console

        err_console().print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True, highlight=False)
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        code = 130
    except OSError as e:  # a path that cannot be read or written (disk full, permissions): one line
        if os.environ.get("AUGMENT_DEBUG") or e.errno is None or not e.strerror:
            raise
        from augment.console import err_console

        where = f"{e.filename}: " if e.filename else ""
        err_console().print(
            f"[red]error:[/red] {escape(where + e.strerror)}", soft_wrap=True, highlight=False
        )
        sys.exit(1)
    except typer.TyperException as e:  # usage errors: typer prints them with the command's usage line
        e.show()
        sys.exit(e.exit_code)
    if code == 130:  # Ctrl-C (typer returns it as this exit code): what was kept, how to go on
        from augment.console import err_console

        hint = f": {_interrupt_hint[0]}" if _interrupt_hint else ""
        err_console().print(f"interrupted{escape(hint)}", soft_wrap=True, highlight=False)
    sys.exit(code if isinstance(code, int) else 0)
