"""Keep the training libraries from drawing or nagging on their own.

The library logs and never draws: progress bars belong to the CLI. transformers, datasets and huggingface_hub draw
bars while loading, saving and mapping; these are switched off inside `quiet_libraries()` and the previous state is
restored on exit, so a user who wants them in their own script keeps them outside our calls. Deprecation warnings
that the libraries raise about each other's internals (nothing a user of rdistill can act on) are dropped there too.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

# peft and TRL read model.is_gradient_checkpointing, which transformers 5 renamed; they will follow.
_INTERNAL_DEPRECATIONS = (r"`is_gradient_checkpointing` is deprecated",)


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    import datasets
    import huggingface_hub.utils as hub_utils
    import transformers.utils.logging as transformers_logging

    restore = []
    if transformers_logging.is_progress_bar_enabled():
        transformers_logging.disable_progress_bar()
        restore.append(transformers_logging.enable_progress_bar)
    if datasets.is_progress_bar_enabled():
        datasets.disable_progress_bars()
        restore.append(datasets.enable_progress_bars)
    if not hub_utils.are_progress_bars_disabled():
        hub_utils.disable_progress_bars()
        restore.append(hub_utils.enable_progress_bars)
    try:
        with warnings.catch_warnings():
            for message in _INTERNAL_DEPRECATIONS:
                warnings.filterwarnings("ignore", message=message, category=FutureWarning)
            yield
    finally:
        for enable in restore:
            enable()
