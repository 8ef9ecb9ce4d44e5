"""Strategies: a prompt file in prompts/ (front-matter header + Jinja2 instruction) and a parser."""

from augment.strategies.base import (
    DOCUMENT_BLOCK,
    Strategy,
    builtin_prompts_dir,
    discover_prompts,
    load_strategies,
    load_strategy,
    prompt_template,
)
from augment.strategies.parsers import PARSERS, Parsed

__all__ = [
    "DOCUMENT_BLOCK",
    "PARSERS",
    "Parsed",
    "Strategy",
    "builtin_prompts_dir",
    "prompt_template",
    "discover_prompts",
    "load_strategies",
    "load_strategy",
]
