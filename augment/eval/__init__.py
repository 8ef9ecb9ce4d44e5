"""`augment eval`: closed-book (and open-book) QA on the documents' facts, per model, with intervals."""

from augment.eval.metrics import bootstrap_ci, exact_match, f1_score, normalize_answer
from augment.qafile import QAItem, load_qa

__all__ = ["QAItem", "bootstrap_ci", "exact_match", "f1_score", "load_qa", "normalize_answer"]
