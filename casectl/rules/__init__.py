"""The rules: statuses, block kinds, actions and guards. Pure Python.

Everything that decides what may happen to a case lives here; the store, the
services and the CLI only ask.
"""

from .builtin import BUILTIN
from .definitions import workflow_from_dict, workflow_to_dict
from .model import (
    ACTIVITY_DONE_STATES,
    ACTIVITY_STATES,
    AGENT,
    BLOCK_KINDS,
    BLOCK_KINDS_BY_NAME,
    BLOCK_STATUSES,
    GUARDS,
    SYSTEM,
    Action,
    ActivityState,
    BlockState,
    CaseState,
    Status,
    Verdict,
    Workflow,
    allowed_actions,
    block_action_check,
    check,
    check_set_status,
    lint,
)

__all__ = [
    "ACTIVITY_DONE_STATES",
    "ACTIVITY_STATES",
    "AGENT",
    "BLOCK_KINDS",
    "BLOCK_KINDS_BY_NAME",
    "BLOCK_STATUSES",
    "BUILTIN",
    "GUARDS",
    "SYSTEM",
    "Action",
    "ActivityState",
    "BlockState",
    "CaseState",
    "Status",
    "Verdict",
    "Workflow",
    "allowed_actions",
    "block_action_check",
    "check",
    "check_set_status",
    "lint",
    "workflow_from_dict",
    "workflow_to_dict",
]
