"""After a command: deliver what it queued in the outbox (best effort, quick).

(Filled in by the "outside world" work.) Must stay cheap when nothing is due:
one indexed query, no heavy imports.
"""

from __future__ import annotations

import click


def after_command(ctx: click.Context) -> None:
    """Try the outbox items that are due now; failures stay queued for retry."""
