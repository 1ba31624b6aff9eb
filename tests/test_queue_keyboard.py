"""The label queue driven from the keyboard: the queue logic (ssl_core.labeling.queue), the one-at-a-
time view in AppTest (which cannot press keys, so it clicks the buttons the keys trigger and
checks each carries its shortcut), and one real browser that presses the keys."""
import numpy as np
import pytest
from conftest import REPO
from streamlit.testing.v1 import AppTest

from ssl_core.labeling import classes as label_classes
from ssl_core.labeling import label_log as labels
from ssl_core.labeling import queue as labelqueue
from ssl_core.labeling.classes import LabelError
from ssl_core.project.folder import Project, projects_dir
from ssl_core.results.predictions import save_predictions
from ui.text import escape_markdown

ORDER = [5, 6, 7, 8]


# --- the queue logic -------------------------------------------------------------------------

def test_current_is_the_first_unlabeled_image_in_queue_order():
    y = np.full(10, -1)
    assert labelqueue.current(ORDER, y) == 5
    y[[5, 7]] = 0
    assert labelqueue.pending(ORDER, y) == [6, 8]
    assert labelqueue.current(ORDER, y) == 6
    y[[6, 8]] = 1
    assert labelqueue.current(ORDER, y) is None and labelqueue.pending(ORDER, y) == []
    assert labelqueue.pending([3, 99], np.full(10, -1)) == [3]        # ids past the end: dropped


def test_skip_moves_the_image_to_the_back():
    y = np.full(10, -1)
    order = labelqueue.skip(ORDER, 5)
    assert order == [6, 7, 8, 5] and labelqueue.current(order, y) == 6
    assert labelqueue.skip(order, 7) == [6, 8, 5, 7]


def test_digit_keys_go_to_the_first_ten_classes():
    keys = labelqueue.digit_keys(range(100, 112))
    assert list(keys.values()) == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"]
    assert 110 not in keys and keys[109] == "0"


def test_label_current_commits_and_advances_and_undo_brings_it_back(digits_project):
    store = digits_project.store
    a = label_classes.add_class(store, "a").id
    y = labels.current_labels(store)
    image, result, nxt = labelqueue.label_current(store, ORDER, y, a, user="me")
    assert (image, nxt, result.n_images) == (5, 6, 1)
    y = labels.current_labels(store)                  # on disk before the function returned
    assert y[5] == a and labelqueue.current(ORDER, y) == 6
    labels.undo_last(store, user="me")
    y = labels.current_labels(store)
    assert y[5] == -1 and labelqueue.current(ORDER, y) == 5   # back in its old place
    y[ORDER] = a
    with pytest.raises(LabelError, match="suggest more"):
        labelqueue.label_current(store, ORDER, y, a)


def test_escape_markdown_keeps_class_names_literal():
    assert escape_markdown("*b* [x](y) $z$ <i>") == r"\*b\* \[x\]\(y\) \$z\$ \<i\>"
    assert ":\u200bred\\[x\\]" == escape_markdown(":red[x]")
    assert escape_markdown("cat 2") == "cat 2"


# --- the page in AppTest ---------------------------------------------------------------------

@pytest.fixture
def queue():
    """The queue page on digits with classes a, b and a fixed queue, in the keyboard view."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    store = Project.open(projects_dir() / "digits").store
    for name in ("a", "b"):
        label_classes.add_class(store, name)
    at.session_state["suggested"] = list(ORDER)
    at.switch_page("pages/queue.py").run()
    at.segmented_control(key="queue_view").set_value("One at a time").run()
    assert not at.exception, at.exception
    return at, store


def shown(at) -> int:
    """The image the one-at-a-time view shows now (its buttons are keyed qk-<image>-...)."""
    return int(next(b.key for b in at.button if b.key and b.key.endswith("-skip")).split("-")[1])


def button(at, suffix: str):
    return next(b for b in at.button if b.key and b.key.startswith("qk-") and b.key.endswith(suffix))


def test_keyboard_view_buttons_carry_their_shortcuts(queue):
    at, store = queue
    a, b = (c.id for c in label_classes.list_classes(store))
    assert shown(at) == 5
    shortcuts = {b_.key: b_.proto.shortcut for b_ in at.button if b_.key and b_.key.startswith("qk-")}
    assert shortcuts == {"qk-5-accept": "a", "qk-5-skip": "s", "qk-undo": "z",
                         f"qk-5-c{a}": "1", f"qk-5-c{b}": "2"}
    assert button(at, "-accept").proto.disabled                 # no model, no guess to accept
    assert next(x for x in at.button if x.label == "Suggest").proto.shortcut == "n"
    assert any("**A** accepts the guess" in c.value for c in at.caption)


def test_digit_labels_the_shown_image_and_the_next_comes_up(queue):
    at, store = queue
    a, b = (c.id for c in label_classes.list_classes(store))
    button(at, f"-c{b}").click().run()                          # key "2"
    assert not at.exception, at.exception
    assert labels.current_labels(store)[5] == b
    assert shown(at) == 6
    button(at, f"-c{a}").click().run()                          # key "1"
    y = labels.current_labels(store)
    assert y[6] == a and (y >= 0).sum() == 2 and shown(at) == 7
    assert any("2 of 4 labeled" in p.proto.text for p in at.get("progress"))


def test_skip_advances_without_labeling_and_undo_removes_the_last_label(queue):
    at, store = queue
    a = label_classes.list_classes(store)[0].id
    button(at, "-skip").click().run()                           # key "S"
    assert shown(at) == 6 and (labels.current_labels(store) >= 0).sum() == 0
    assert at.session_state["suggested"] == [6, 7, 8, 5]
    button(at, f"-c{a}").click().run()
    assert labels.current_labels(store)[6] == a and shown(at) == 7
    button(at, "qk-undo").click().run()                         # key "Z"
    assert not at.exception, at.exception
    assert (labels.current_labels(store) >= 0).sum() == 0 and shown(at) == 6


def test_a_accepts_the_models_guess(queue):
    at, store = queue
    a, b = (c.id for c in label_classes.list_classes(store))
    project = Project.open(projects_dir() / "digits")
    proba = np.tile([0.1, 0.9], (1797, 1)).astype(np.float32)  # "b" everywhere, 90% sure
    save_predictions(project, proba, np.array([a, b]), None, "test")
    at.run()
    accept = button(at, "-accept")
    assert accept.label == "Accept: b" and not accept.proto.disabled
    assert any("90% sure" in m.value for m in at.markdown)
    accept.click().run()
    assert labels.current_labels(store)[5] == b and shown(at) == 6


def test_classes_beyond_ten_are_picked_by_name_and_names_are_escaped(queue):
    at, store = queue
    for k in range(10):
        label_classes.add_class(store, f"c{k}")
    odd = label_classes.add_class(store, "*odd* [x]").id                  # the 13th class: no digit
    at.run()
    keys = [b.proto.shortcut for b in at.button if b.key and b.key.startswith("qk-5-c")]
    assert keys == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"]
    at.selectbox(key="qk-5-more").set_value(odd).run()
    assert not at.exception, at.exception
    assert labels.current_labels(store)[5] == odd and shown(at) == 6
    assert any(escape_markdown("*odd* [x]") in c.value for c in at.caption)  # "Labeled … as …"


def test_all_done_still_offers_undo_then_the_grid_saves_with_ctrl_enter(queue):
    at, store = queue
    a = label_classes.list_classes(store)[0].id
    for _ in ORDER:
        button(at, f"-c{a}").click().run()
    assert (labels.current_labels(store)[ORDER] == a).all()
    assert any("All 4 suggested images are labeled" in s.value for s in at.success)
    at.button(key="qk-undo").click().run()
    assert labels.current_labels(store)[8] == -1
    at.segmented_control(key="queue_view").set_value("Grid").run()
    assert [s.key for s in at.selectbox if s.key.startswith("q-")] == ["q-8"]
    save = at.button(key="FormSubmitter:queue_form-Save 1 (accept the guesses, with your fixes)")
    assert save.proto.shortcut == "ctrl+enter"
    at.selectbox(key="q-8").set_value(a)
    save.click().run()
    assert not at.exception, at.exception
    assert labels.current_labels(store)[8] == a
