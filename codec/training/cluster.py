"""Which worker am I? TF_CONFIG, read without importing TensorFlow.

`aec train` answers this before the (slow) TensorFlow import so that it can
refuse an existing --out at once; loop.py uses it to decide which worker
writes files. TF_CONFIG is TensorFlow's own cluster description, e.g.

    {"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}

The chief is the task of type "chief", or worker 0 when the cluster has no
chief (TensorFlow's convention); only the chief writes the model file and the
checkpoints others resume from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ..errors import AecError


@dataclass(frozen=True)
class Task:
    index: int  # 0 .. workers-1, the chief first
    workers: int
    is_chief: bool
    task_type: str | None = None
    task_id: int | None = None


SINGLE = Task(index=0, workers=1, is_chief=True)


def task_from_tf_config(value: str | None = None) -> Task:
    """This process's place in the cluster TF_CONFIG describes (SINGLE without one)."""
    value = os.environ.get("TF_CONFIG") if value is None else value
    if not value or not value.strip():
        return SINGLE
    try:
        config = json.loads(value)
        cluster = config.get("cluster") or {}
        task = config.get("task") or {}
        task_type, task_id = task.get("type"), int(task.get("index", 0))
    except (ValueError, AttributeError, TypeError) as err:
        raise AecError(f"TF_CONFIG: not a valid cluster description ({err})") from None
    if not cluster:
        return SINGLE
    chiefs, workers = list(cluster.get("chief") or []), list(cluster.get("worker") or [])
    if task_type not in ("chief", "worker"):
        raise AecError(f"TF_CONFIG: task type {task_type!r} cannot train (use 'chief' or 'worker')")
    members = chiefs if task_type == "chief" else workers
    if not 0 <= task_id < len(members):
        raise AecError(f"TF_CONFIG: task {task_type} {task_id} is not in the cluster ({len(members)} {task_type}s)")
    index = task_id if task_type == "chief" else len(chiefs) + task_id
    is_chief = task_type == "chief" or (not chiefs and task_id == 0)
    return Task(
        index=index, workers=len(chiefs) + len(workers), is_chief=is_chief, task_type=task_type, task_id=task_id
    )
