"""Export: training shards (JSONL and Parquet) and manifest.json from a run's records."""

from augment.shards.writer import ExportSummary, export, load_records

__all__ = ["ExportSummary", "export", "load_records"]
