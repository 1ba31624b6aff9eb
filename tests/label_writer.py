"""A labeling process for the fault and load tests: labels images through ssl_core.labeling.label_log in a
loop and appends one acknowledgement line per action to a file, only after the call returned,
i.e. after the store committed it. Every acknowledged action must therefore be in the store
exactly once, however the process (or the app beside it) is killed.

    python tests/label_writer.py PROJECT_DIR ACK_FILE --user w1 [--actions 200] [--seed 0]
                                 [--retry-every 0] [--from-image 0] [--classes 2,3]

--actions 0 labels until killed. --retry-every k sends every k-th action a second time with the
same action uuid, as a client whose reply was lost would: the store must record it once.
Each ack line is JSON: uuid, action id, images, class, n (events written), s (seconds the call
took), retry_dup (the retry was recognised as a duplicate of the same action, or null).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ssl_core.data.collection import ImageCollection  # noqa: E402
from ssl_core.labeling import classes as label_classes
from ssl_core.labeling import label_log as labels  # noqa: E402
from ssl_core.project.folder import Project  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("project")
    ap.add_argument("ack")
    ap.add_argument("--user", required=True)
    ap.add_argument("--actions", type=int, default=200, help="0: until killed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--retry-every", type=int, default=0)
    ap.add_argument("--from-image", type=int, default=0, help="label only images from this id on")
    ap.add_argument("--classes", default="", help="comma-separated class ids (default: all)")
    args = ap.parse_args(argv)
    project = Project.open(args.project)
    n = ImageCollection(project).n_images
    classes = ([int(c) for c in args.classes.split(",")] if args.classes
               else [c.id for c in label_classes.list_classes(project.store)])
    rng = random.Random(args.seed)
    # O_APPEND + one write() per line: a line is either whole in the file or absent
    fd = os.open(args.ack, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    k = 0
    while args.actions == 0 or k < args.actions:
        images = rng.sample(range(args.from_image, n), rng.randint(1, 8))
        cls = rng.choice(classes)
        action = f"{args.user}-{k}"
        t0 = time.perf_counter()
        result = labels.set_labels(project.store, images, cls, user=args.user, action_uuid=action)
        seconds = time.perf_counter() - t0
        retry_dup = None
        if args.retry_every and k % args.retry_every == 0:
            again = labels.set_labels(project.store, images, cls, user=args.user, action_uuid=action)
            retry_dup = again.duplicate and again.action_id == result.action_id
        line = {"uuid": action, "action": result.action_id, "images": images, "class": cls,
                "n": result.n_images, "s": round(seconds, 5), "retry_dup": retry_dup}
        os.write(fd, (json.dumps(line) + "\n").encode())
        k += 1
    os.close(fd)
    return 0


def read_acks(path: Path) -> list[dict]:
    """The complete lines of an ack file (a killed writer may leave no partial line, but a
    reader must not trust one either)."""
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text.split("\n")[:-1] if line]


def check_acks(store, acks: list[dict]) -> dict:
    """Each acknowledged action against the store: recorded exactly once, with the events the
    writer was told it wrote (same images, same class). Returns counts and the offending uuids."""
    lost, wrong = [], []
    with store.read() as conn:
        for ack in acks:
            rows = conn.execute("SELECT id FROM actions WHERE uuid = ?", (ack["uuid"],)).fetchall()
            if len(rows) != 1:
                lost.append(ack["uuid"])
                continue
            events = conn.execute("SELECT image_id, class_id FROM label_events WHERE action_id = ?",
                                  (rows[0]["id"],)).fetchall()
            if (len(events) != ack["n"] or rows[0]["id"] != ack["action"]
                    or any(e["class_id"] != ack["class"] or e["image_id"] not in ack["images"]
                           for e in events)):
                wrong.append(ack["uuid"])
    return {"acknowledged": len(acks), "present": len(acks) - len(lost) - len(wrong),
            "lost": lost, "wrong": wrong,
            "events_acknowledged": sum(a["n"] for a in acks)}


if __name__ == "__main__":
    sys.exit(main())
