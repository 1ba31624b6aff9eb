"""Which trained runs keep their model folder (models/run-<id>/, each with its graph cache),
and deleting the others.

Every train job leaves a model folder, tens of MB on a large project, and nothing removed them.
`prune_runs` keeps, per method, the newest `keep` runs that have a folder, plus every run that
must stay whatever its age:
- one a user pinned (`set_pinned`, the Jobs page) or exported (`mark_exported`);
- the one whose predictions are current (predictions.npz names it: the map and queue use it);
- one in progress: its job is queued or running, or it has no summary and no job to ask.
Everything else under models/run-<id>/ is deleted; the runs' rows, metrics and summaries stay,
so the history, curves and learning curve are unchanged (only re-export and warm-starting from
that run are gone; warm starts use the newest run of a method, which is kept).

Pins and exports are two JSON lists of run ids in the store's meta table, each changed inside
one write transaction, so two sessions pinning at once both count. A folder is first renamed
to a hidden name, then removed: a reader never sees half a run folder, and a removal cut short
is finished by the next prune.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field

from ssl_core.project.disk_use import run_folder_id, tree_bytes
from ssl_core.project.folder import Project
from ssl_core.project.store import Store
from ssl_core.results.predictions import load_predictions

DEFAULT_KEEP = 5                          # newest runs with a model kept per method
PINNED_KEY = "retention.pinned_runs"      # meta: JSON list of run ids a user pinned
EXPORTED_KEY = "retention.exported_runs"  # meta: JSON list of run ids whose model was exported
_DELETING = ".deleting-"                  # a run folder being removed is renamed to this prefix
_ACTIVE_JOB = ("queued", "running")       # jobs.records.ACTIVE (a higher layer: not imported)


@dataclass
class PruneReport:
    deleted: list[int] = field(default_factory=list)   # run ids whose folder was removed
    kept: list[int] = field(default_factory=list)      # run ids whose folder stays
    freed_bytes: int = 0


def _ids(value: str | None) -> set[int]:
    try:
        return {int(v) for v in json.loads(value or "[]")}
    except (ValueError, TypeError):
        return set()


def pinned_runs(store: Store) -> set[int]:
    return _ids(store.get_meta(PINNED_KEY))


def exported_runs(store: Store) -> set[int]:
    return _ids(store.get_meta(EXPORTED_KEY))


def _update_list(store: Store, key: str, run_id: int, present: bool) -> set[int]:
    with store.write() as conn:                  # read-modify-write under the write lock
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        ids = _ids(row["value"] if row else None)
        ids = ids | {int(run_id)} if present else ids - {int(run_id)}
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) "
                     "DO UPDATE SET value = excluded.value", (key, json.dumps(sorted(ids))))
    return ids


def set_pinned(store: Store, run_id: int, pinned: bool = True) -> set[int]:
    """Pin (or unpin) a run: a pinned run's model folder is never pruned. Returns the pins."""
    return _update_list(store, PINNED_KEY, run_id, pinned)


def mark_exported(store: Store, run_id: int) -> None:
    """Record that a run's model was exported (its folder is then never pruned)."""
    _update_list(store, EXPORTED_KEY, run_id, True)


def _runs(store: Store) -> list[tuple[int, str, bool]]:
    """(run id, method, in progress) for every run, newest first."""
    marks = ",".join("?" * len(_ACTIVE_JOB))
    with store.read() as conn:
        rows = conn.execute(
            "SELECT r.id, r.method, (r.summary IS NULL AND (r.job_id IS NULL OR EXISTS ("
            f"SELECT 1 FROM jobs j WHERE j.id = r.job_id AND j.status IN ({marks})))) AS busy "
            "FROM runs r ORDER BY r.id DESC", _ACTIVE_JOB).fetchall()
    return [(r["id"], r["method"], bool(r["busy"])) for r in rows]


def protected_runs(project: Project) -> set[int]:
    """Runs whose folder stays whatever its age: pinned, exported, current predictions', or
    in progress."""
    store = project.store
    keep = pinned_runs(store) | exported_runs(store)
    current = load_predictions(project)
    if current is not None and current.run_id is not None:
        keep.add(int(current.run_id))
    return keep | {run_id for run_id, _, busy in _runs(store) if busy}


def plan_prune(project: Project, keep: int = DEFAULT_KEEP) -> PruneReport:
    """What `prune_runs` would delete (freed_bytes: their current size); nothing is touched."""
    folders = _run_folders(project)
    protected = protected_runs(project)
    per_method: dict[str, int] = {}
    report = PruneReport()
    for run_id, method, _ in _runs(project.store):             # newest first
        if run_id not in folders:
            continue                                           # no model folder: nothing to free
        per_method[method] = per_method.get(method, 0) + 1
        if per_method[method] <= keep or run_id in protected:
            report.kept.append(run_id)
        else:
            report.deleted.append(run_id)
            report.freed_bytes += tree_bytes(folders[run_id])
    return report


def prune_runs(project: Project, keep: int = DEFAULT_KEEP) -> PruneReport:
    """Delete the model folders of runs beyond the newest `keep` per method, except protected
    ones (see the module docstring). Returns what was deleted and the bytes freed. Safe to call
    from several processes at once (a folder already gone is skipped). Folders of unknown runs
    (no row in the store) are left alone."""
    if keep < 1:
        raise ValueError("keep at least one run per method")
    _finish_interrupted(project)
    plan = plan_prune(project, keep)
    done = PruneReport(kept=plan.kept)
    for run_id in plan.deleted:
        folder = project.models_dir / f"run-{run_id}"
        size = tree_bytes(folder)
        aside = folder.with_name(f"{_DELETING}{folder.name}-{uuid.uuid4().hex[:8]}")
        try:
            folder.rename(aside)                  # atomic: the run folder is whole or gone
        except OSError:
            continue                              # gone already (another prune), or read-only
        shutil.rmtree(aside, ignore_errors=True)
        done.deleted.append(run_id)
        done.freed_bytes += size
    return done


def _run_folders(project: Project) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        with os.scandir(project.models_dir) as entries:
            for entry in entries:
                run_id = run_folder_id(entry.name)
                if run_id is not None and entry.is_dir(follow_symlinks=False):
                    out[run_id] = entry.path
    except OSError:
        pass
    return out


def _finish_interrupted(project: Project) -> None:
    """Remove folders a prune renamed aside but did not finish deleting (a killed process)."""
    try:
        with os.scandir(project.models_dir) as entries:
            leftovers = [e.path for e in entries if e.name.startswith(_DELETING)]
    except OSError:
        return
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
