"""Connect to a Ray cluster (or start a local one) for the Ray Data jobs of generate and curate."""

from __future__ import annotations

import logging
from typing import Any

from augment.errors import AugmentError


def init_ray(address: str | None) -> Any:
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise AugmentError("--engine ray needs Ray Data: pip install 'augment[ray]'") from e
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the driver reports; Ray's bars would fill CI logs
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)  # its errors reach the user as one line
    return ray
