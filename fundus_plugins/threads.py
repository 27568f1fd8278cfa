"""torch's CPU thread count for a block of work, restored afterwards."""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional


@contextlib.contextmanager
def torch_threads(threads: Optional[int]) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads (``None``: as set), then restore
    the caller's setting, so that a library call leaves the process as it found it (the
    ablation's sequential runs once left the rest of the calling process, a test session
    included, on their thread count)."""
    import torch
    old = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f'threads must be >= 1 (or None), got {threads}')
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(old)
