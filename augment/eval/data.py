"""The evaluation QA files `augment eval --qa` reads (kept here for imports; see augment.qafile)."""

from augment.qafile import QAItem, load_qa

__all__ = ["QAItem", "load_qa"]
