"""Class management: names and colours, merge and delete as undoable label actions, and the
schema upgrade that made classes hideable."""
import sqlite3

import pytest

from ssl_core.export.tables import labels_frame
from ssl_core.labeling import classes as label_classes
from ssl_core.labeling import label_log as labels
from ssl_core.labeling.classes import PALETTE, LabelError, add_class, list_classes
from ssl_core.labeling.label_log import delete_class
from ssl_core.project.folder import Project
from ssl_core.project.schema import SCHEMA_VERSION


def names(store) -> list[str]:
    return [c.name for c in label_classes.list_classes(store)]


def test_merge_relabels_hides_sources_and_undo_restores_both(digits_project):
    s = digits_project.store
    cat, kitten, dog = (label_classes.add_class(s, n) for n in ("cat", "kitten", "dog"))
    tiger = label_classes.add_class(s, "tiger")
    labels.set_labels(s, [1, 2], cat.id)
    labels.set_labels(s, [3], kitten.id)
    labels.set_labels(s, [4], dog.id)
    labels.set_labels(s, [5], tiger.id)
    before = labels.current_labels(s)

    result = labels.merge_classes(s, [kitten.id, tiger.id], cat.id, "ann")
    assert (result.kind, result.n_images, result.duplicate) == ("merge", 2, False)
    y = labels.current_labels(s)
    assert (y[[1, 2, 3, 4, 5]] == [cat.id, cat.id, cat.id, dog.id, cat.id]).all()
    assert names(s) == ["cat", "dog"]
    hidden = [c for c in label_classes.list_classes(s, include_deleted=True) if c.deleted]
    assert [c.name for c in hidden] == ["kitten", "tiger"]
    assert labels.label_history(s)[0]["kind"] == "merge"
    with pytest.raises(LabelError, match="no class"):
        labels.set_labels(s, [9], kitten.id)

    undo = labels.undo_last(s, user="ann")
    assert undo.n_images == 2
    assert (labels.current_labels(s) == before).all()
    assert names(s) == ["cat", "kitten", "dog", "tiger"]
    assert labels.undo_last(s, user="ann") is None  # ann's only undoable action is undone


def test_undo_of_a_merge_keeps_later_work_of_others(digits_project):
    s = digits_project.store
    a, b, c = (label_classes.add_class(s, n) for n in "abc")
    labels.set_labels(s, [1, 2, 3], a.id, user="bob")
    labels.merge_classes(s, [a.id], b.id, "ann")
    labels.set_labels(s, [2], c.id, user="bob")  # bob relabels one merged image
    labels.undo_last(s, user="ann")
    y = labels.current_labels(s)
    assert (y[[1, 2, 3]] == [a.id, c.id, a.id]).all()


def test_merge_requests_are_validated_and_retries_recorded_once(digits_project):
    s = digits_project.store
    a, b = label_classes.add_class(s, "a"), label_classes.add_class(s, "b")
    labels.set_labels(s, [7], a.id)
    with pytest.raises(LabelError, match="at least one"):
        labels.merge_classes(s, [], b.id, "ann")
    with pytest.raises(LabelError, match="into itself"):
        labels.merge_classes(s, [a.id, b.id], b.id, "ann")
    with pytest.raises(LabelError, match="no class with id 99"):
        labels.merge_classes(s, [a.id], 99, "ann")
    assert names(s) == ["a", "b"] and labels.current_labels(s)[7] == a.id  # nothing happened
    first = labels.merge_classes(s, [a.id], b.id, "ann", action_uuid="m1")
    again = labels.merge_classes(s, [a.id], b.id, "ann", action_uuid="m1")  # a is gone now
    assert again.duplicate and again.action_id == first.action_id and again.n_images == 1
    assert len(labels.label_history(s)) == 2


def test_delete_clears_and_hides_and_undo_brings_both_back(digits_project):
    s = digits_project.store
    a, b = label_classes.add_class(s, "a"), label_classes.add_class(s, "b")
    labels.set_labels(s, [1, 2], a.id)
    labels.set_labels(s, [3], b.id)
    result = labels.delete_class(s, a.id, "ann")
    assert (result.kind, result.n_images) == ("delete_class", 2)
    y = labels.current_labels(s)
    assert (y[[1, 2, 3]] == [-1, -1, b.id]).all() and names(s) == ["b"]
    for edit in (lambda: label_classes.rename_class(s, a.id, "z"),
                 lambda: label_classes.set_class_color(s, a.id, "#123456"),
                 lambda: labels.delete_class(s, a.id, "ann"),
                 lambda: labels.set_labels(s, [4], a.id)):
        with pytest.raises(LabelError, match="no class"):
            edit()
    labels.undo_last(s, user="ann")
    assert (labels.current_labels(s)[[1, 2, 3]] == [a.id, a.id, b.id]).all()
    assert names(s) == ["a", "b"]


def test_a_deleted_name_can_be_reused_and_undo_renames_on_conflict(digits_project):
    s = digits_project.store
    cat = label_classes.add_class(s, "cat")
    labels.set_labels(s, [1], cat.id)
    labels.delete_class(s, cat.id, "ann")
    new_cat = label_classes.add_class(s, "Cat")  # the old name is free again
    assert new_cat.id != cat.id and names(s) == ["Cat"]
    labels.undo_last(s, user="ann")
    assert names(s) == ["cat (restored)", "Cat"]
    assert labels.current_labels(s)[1] == cat.id
    frame = labels_frame(digits_project)
    assert frame.loc[frame.image_id == 1, "label"].item() == "cat (restored)"


def test_undo_never_restores_a_label_of_a_deleted_class(digits_project):
    s = digits_project.store
    a, b = label_classes.add_class(s, "a"), label_classes.add_class(s, "b")
    labels.set_labels(s, [1], a.id, user="ann")
    labels.set_labels(s, [1], b.id, user="ann")
    labels.delete_class(s, a.id, "bob")  # image 1 is b: untouched
    labels.undo_last(s, user="ann")      # image 1 would go back to a, which is gone
    assert labels.current_labels(s)[1] == -1
    with s.read() as conn:  # the log itself says "cleared", not "a"
        last = conn.execute("SELECT class_id FROM label_events WHERE image_id = 1 "
                            "ORDER BY seq DESC LIMIT 1").fetchone()[0]
    assert last is None
    labels.undo_last(s, user="bob")      # a comes back; image 1 stays as ann's undo left it
    assert names(s) == ["a", "b"] and labels.current_labels(s)[1] == -1


def test_class_names_are_validated(digits_project):
    s = digits_project.store
    cat = label_classes.add_class(s, "  big   cat ")
    assert cat.name == "big cat"
    for bad, message in (("   ", "empty"), ("", "empty"), ("x" * 61, "at most 60")):
        with pytest.raises(LabelError, match=message):
            label_classes.add_class(s, bad)
        with pytest.raises(LabelError, match=message):
            label_classes.rename_class(s, cat.id, bad)
    assert label_classes.add_class(s, "x" * 60).name == "x" * 60
    assert label_classes.add_class(s, "BIG CAT").id == cat.id  # same name ignoring case: same class
    dog = label_classes.add_class(s, "dog")
    with pytest.raises(LabelError, match="'big cat' already exists"):
        label_classes.rename_class(s, dog.id, "Big Cat")
    label_classes.rename_class(s, cat.id, "Big Cat")  # a change of case is a rename of itself
    label_classes.rename_class(s, dog.id, "Éclair")
    with pytest.raises(LabelError, match="already exists"):
        label_classes.rename_class(s, cat.id, "éCLAIR")  # beyond ASCII: SQLite's NOCASE misses this
    assert names(s) == ["Big Cat", "x" * 60, "Éclair"]
    with pytest.raises(LabelError, match="no class"):
        label_classes.rename_class(s, 999, "fine")


def test_live_names_are_unique_in_the_database_too(digits_project):
    s = digits_project.store
    label_classes.add_class(s, "cat")
    with pytest.raises(sqlite3.IntegrityError):
        with s.write() as conn:  # a writer that skips the checks is stopped by the index
            conn.execute("INSERT INTO classes (name, color, created_at) "
                         "VALUES ('CAT', '#000000', 0)")


def test_class_colours_are_validated(digits_project):
    s = digits_project.store
    a = label_classes.add_class(s, "a")
    label_classes.set_class_color(s, a.id, " #12ab9F ")
    assert label_classes.list_classes(s)[0].color == "#12ab9F"
    for bad in ("red", "#12ab9", "#12ab9fa", "12ab9f", "#12ab9g", ""):
        with pytest.raises(LabelError, match="#rrggbb"):
            label_classes.set_class_color(s, a.id, bad)
    with pytest.raises(LabelError, match="#rrggbb"):
        label_classes.add_class(s, "b", color="blue")
    assert label_classes.add_class(s, "c", color="#00FF00").color == "#00FF00"
    assert label_classes.list_classes(s)[0].color == "#12ab9F"


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE classes (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, color TEXT NOT NULL,
                      created_at REAL NOT NULL);
CREATE TABLE actions (id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('label', 'clear', 'undo')), user TEXT NOT NULL,
    ts REAL NOT NULL, undoes INTEGER REFERENCES actions(id));
CREATE TABLE label_events (seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id INTEGER NOT NULL REFERENCES actions(id), image_id INTEGER NOT NULL,
    class_id INTEGER REFERENCES classes(id), user TEXT NOT NULL, ts REAL NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO classes VALUES (1, 'cat', '#111111', 0), (2, 'Cat', '#222222', 0),
                           (3, 'dog', '#333333', 0);
INSERT INTO actions VALUES (1, 'u1', 'label', 'ann', 0, NULL), (2, 'u2', 'label', 'ann', 0, NULL);
INSERT INTO label_events (action_id, image_id, class_id, user, ts)
    VALUES (1, 0, 1, 'ann', 0), (1, 1, 1, 'ann', 0), (2, 2, 2, 'ann', 0), (2, 3, 3, 'ann', 0);
"""


def test_a_version_1_project_is_upgraded_when_opened(tmp_path):
    root = tmp_path / "old"
    root.mkdir()
    conn = sqlite3.connect(root / "project.db")
    conn.executescript(V1_SCHEMA)
    conn.close()
    project = Project.open(root)  # no initialise(): the first read upgrades
    s = project.store
    assert [(c.id, c.name, c.color) for c in label_classes.list_classes(s)] == [
        (1, "cat", "#111111"), (2, "Cat (2)", "#222222"), (3, "dog", "#333333")]
    assert s.get_meta("schema_version") == str(SCHEMA_VERSION)
    y = labels.current_labels(s, 5)
    assert y.tolist() == [1, 1, 2, 3, -1]
    Project.create(root)  # the rest of the schema; idempotent on the upgraded tables
    labels.merge_classes(s, [2], 1, "ann")  # the new action kind is allowed
    assert labels.current_labels(s, 5).tolist() == [1, 1, 1, 3, -1]
    labels.undo_last(s, user="ann")
    assert labels.current_labels(s, 5).tolist() == [1, 1, 2, 3, -1]
    with s.read() as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert "REFERENCES actions" in conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'label_events'").fetchone()[0]


def test_new_classes_take_the_first_colour_no_live_class_has(digits_project):
    store = digits_project.store
    first = [add_class(store, name).color for name in ("a", "b", "c")]
    assert first == list(PALETTE[:3])
    delete_class(store, [c.id for c in list_classes(store) if c.name == "a"][0])
    assert add_class(store, "d").color == PALETTE[0]          # a deleted class gives its back
    add_class(store, "e", color=PALETTE[3].lower())           # a user's choice counts as used
    assert add_class(store, "f").color == PALETTE[4]
    for i in range(len(PALETTE)):
        add_class(store, f"more {i}")
    live = [c.color for c in list_classes(store)]
    assert set(PALETTE) <= {c.upper() for c in live}          # every colour used before repeats
