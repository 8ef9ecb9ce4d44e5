"""Export: training shards (JSONL and Parquet) and manifest.json from a run's records."""

from augment.shards.writer import ExportSummary, export, generated_files, left_aside, load_records

__all__ = ["ExportSummary", "export", "generated_files", "left_aside", "load_records"]
