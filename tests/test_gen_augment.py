"""Generated labelled images as training data (issue 17): the kept examples reach the loss with
their weight, the filter drops what the classifier doubts, the record and grid survive save and
load, and with the option off nothing changes (no generator, no extra rows)."""
import numpy as np
import pytest
from test_jobs import wait_for

from ssl_core.data.sources import SourceSpec, load_source
from ssl_core.jobs import records as jobs
from ssl_core.jobs import train_job, worker
from ssl_core.jobs.train_progress import generated_path
from ssl_core.models import baseline as baseline_module
from ssl_core.models import default_method, generated, vae_method
from ssl_core.models.classifier import ClassifierConfig
from ssl_core.models.generated import GenAugmentConfig, gen_augment_for, generate_labelled
from ssl_core.models.registry import load_model, make_estimator
from ssl_core.models.vae import VAE, VAEConfig
from ssl_core.results.history import history_frame
from ssl_core.results.run_text import summary_lines
from ssl_core.results.runs import list_runs

FAST = ClassifierConfig(width=(8, 16, 16), hidden=32, epochs=1.0, min_steps=20, batch_size=64)
FAST_VAE = VAEConfig(batch_size=64, beta=0.25, epochs=1.0, min_steps=60)


@pytest.fixture(scope="module")
def digits():
    """(X (1797, 8, 8, 1) uint8, y with 5 labels per class and -1 elsewhere, ground truth)."""
    data = load_source(SourceSpec("digits"))
    y = np.full(len(data.gt), -1, np.int64)
    for c in range(10):
        y[np.flatnonzero(data.gt == c)[:5]] = c
    return data.images, y, data.gt


class RealDraws:
    """A stand-in generator that 'draws' real images of the class asked for: the tests check
    the wiring (draw -> filter -> training set -> loss -> saved record) in seconds; what a VAE
    learns in minutes is the benchmark's question."""
    draws_images = True

    def __init__(self, X, gt):
        self.X, self.gt, self.classes_, self.input_shape_ = X, gt, np.unique(gt), X.shape[1:]

    def sample(self, n, label=None, seed=0):
        rng = np.random.default_rng(seed)
        return self.X[rng.choice(np.flatnonzero(self.gt == label), n)]


def spy(monkeypatch, module):
    """Record (rows, targets, weights) of every train_classifier call made by `module`."""
    calls, real = [], module.train_classifier

    def recording(x, targets, weights, *args, **kwargs):
        calls.append((len(x), np.asarray(targets).copy(), np.asarray(weights, float).copy()))
        return real(x, targets, weights, *args, **kwargs)
    monkeypatch.setattr(module, "train_classifier", recording)
    return calls


def check_generated_rows(call, n_real, record, weight):
    """The generated rows follow the real ones: as many as were kept, each with `weight`."""
    rows, targets, weights = call
    m = record["n_used_total"]
    assert m > 0 and rows == n_real + m == len(targets) == len(weights)
    assert np.all(weights[n_real:] == weight)
    kept = np.bincount(targets[n_real:], minlength=10)
    assert kept.tolist() == [record["n_used"][str(c)] for c in range(10)]


def check_save_load(model, X, tmp_path):
    loaded = load_model(model.save(tmp_path / "model"))
    assert loaded.gen_augment_ == model.gen_augment_
    assert loaded.gen_grid_ is not None and np.array_equal(loaded.gen_grid_, model.gen_grid_)
    assert loaded.gen_grid_.shape == (10, 8, 8, 8, 1) and loaded.gen_grid_.dtype == np.uint8
    assert loaded.config.gen_augment == model.config.gen_augment
    assert np.allclose(loaded.predict_proba(X[:200]), model.predict_proba(X[:200]), atol=1e-5)


def test_default_method_trains_its_cnn_on_the_generated_images_and_saves_the_record(
        digits, monkeypatch, tmp_path):
    X, y, gt = digits
    calls = spy(monkeypatch, default_method)
    cfg = GenAugmentConfig(enabled=True, per_class=20, weight=0.5, min_confidence=0.8)
    model = make_estimator("default", 0, min_images_for_cnn=1000, rounds=1, cnn=FAST,
                           small_width=(8, 16, 16), gen_augment=cfg)
    model.fit(X, y, time_budget_s=60, generator=RealDraws(X, gt))
    record = model.gen_augment_
    assert record["stage"] == "cnn" and record["generator"].startswith("given RealDraws")
    assert record["n_drawn"] == 200 and len(calls) == 1
    check_generated_rows(calls[0], len(X), record, 0.5)
    assert np.all(calls[0][2][:len(X)][y >= 0] == 3.0)         # user labels weigh as before
    check_save_load(model, X, tmp_path)


def test_default_method_says_when_there_is_no_cnn_stage_to_augment(digits, monkeypatch,
                                                                   tmp_path):
    X, y, _ = digits
    monkeypatch.setattr(default_method, "prepare_generator", _no_generator)
    model = make_estimator("default", 0, gen_augment=GenAugmentConfig(enabled=True))
    model.fit(X, y, time_budget_s=30)                            # 1,797 images: graph only
    assert model.net_ is None and model.gen_augment_["n_used_total"] == 0
    assert "no CNN stage" in model.gen_augment_["note"]
    assert load_model(model.save(tmp_path / "m")).gen_augment_ == model.gen_augment_


def test_vae_method_trains_its_classifier_on_draws_of_its_own_vae(digits, monkeypatch, tmp_path):
    X, y, gt = digits
    calls = spy(monkeypatch, vae_method)
    draws = RealDraws(X, gt)
    monkeypatch.setattr(VAE, "sample", lambda self, n, label=None, seed=0: draws.sample(n, label, seed))
    cfg = GenAugmentConfig(enabled=True, per_class=20, weight=2.0, min_confidence=0.0)
    model = make_estimator("vae", 0, small_vae=FAST_VAE, classifier=FAST, min_classifier_s=0.0,
                           gen_augment=cfg)
    model.fit(X, y, time_budget_s=60)
    record = model.gen_augment_
    assert record["stage"] == "classifier" and "own VAE" in record["generator"]
    assert len(calls) == 1
    check_generated_rows(calls[0], len(X), record, 2.0)
    check_save_load(model, X, tmp_path)


def test_baseline_trains_on_generated_images_its_validation_model_on_its_own(
        digits, monkeypatch, tmp_path):
    X, y, gt = digits
    calls = spy(monkeypatch, baseline_module)
    cfg = gen_augment_for("baseline", per_class=20, weight=0.5, min_confidence=0.5)
    assert cfg.generator_share == 0.5                         # the baseline's own default kept
    model = make_estimator("baseline", 0, classifier=FAST, gen_augment=cfg)
    model.fit(X, y, time_budget_s=60, generator=RealDraws(X, gt))
    record = model.gen_augment_
    assert record["stage"] == "baseline" and len(calls) == 2   # validation model, final model
    check_generated_rows(calls[1], 50, record, 0.5)            # 50 labels, then generated
    rows, _, weights = calls[0]              # the validation model: its own draws appended,
    assert rows > 50 and np.all(weights[50:] == 0.5)          # the 10 held-out labels weigh 0
    assert (weights[:50] == 0).sum() == 10 and (weights[:50] == 1).sum() == 40
    check_save_load(model, X, tmp_path)


def test_baseline_trains_a_pixel_vae_when_no_generator_is_given(digits, monkeypatch):
    X, y, _ = digits
    calls = spy(monkeypatch, baseline_module)
    model = make_estimator("baseline", 0, classifier=FAST, val_fraction=0.0,
                           gen_augment=GenAugmentConfig(enabled=True, per_class=10))
    monkeypatch.setattr(generated, "generator_vae_config", lambda shape: FAST_VAE)
    model.fit(X, y, time_budget_s=20)
    record = model.gen_augment_
    assert record["generator"].startswith("VAE trained here on 1,797 images")
    assert record["n_drawn"] == 100 and calls[-1][0] == 50 + record["n_used_total"]


def test_feature_mode_adds_generated_vectors_to_the_default_methods_head(digits, monkeypatch):
    X, y, _ = digits
    rng = np.random.default_rng(0)              # stand-in features: a random view of the pixels
    feats = (X.reshape(len(X), -1) / 255.0).astype(np.float32) @ rng.standard_normal(
        (64, 1280)).astype(np.float32)
    monkeypatch.setattr(generated, "generator_vae_config", lambda shape: VAEConfig(
        hidden=(64, 32), batch_size=64, beta=0.1, epochs=1.0, min_steps=100))
    calls = spy(monkeypatch, default_method)
    model = make_estimator("default", 0, representation="efficientnet-lite0", head=FAST,
                           gen_augment=GenAugmentConfig(enabled=True, per_class=20,
                                                        min_confidence=0.5, weight=0.25))
    model.fit(X, y, features=feats, time_budget_s=60)
    record = model.gen_augment_
    assert model.head_ is not None and record["stage"] == "head" and model.gen_grid_ is None
    assert "feature vectors" in record["note"] and len(calls) == 1
    check_generated_rows(calls[0], len(X), record, 0.25)


def test_the_filter_drops_what_the_classifier_doubts():
    class Filled:                      # images filled with their class value: the scorer reads it
        draws_images, classes_ = True, np.array([10, 20, 30])

        def sample(self, n, label=None, seed=0):
            return np.full((n, 4, 4, 1), label, np.uint8)

    def score(images):                 # sure of 10, unsure of 20 (0.6), wrong about 30
        drawn = images[:, 0, 0, 0]
        proba = np.zeros((len(images), 3))
        proba[drawn == 10, 0] = 0.95
        proba[drawn == 10, 1:] = 0.025
        proba[drawn == 20] = [0.2, 0.6, 0.2]
        proba[drawn == 30] = [0.0, 0.95, 0.05]
        return proba
    cfg = GenAugmentConfig(enabled=True, per_class=7, min_confidence=0.9, grid_per_class=4)
    gen = generate_labelled(Filled(), np.array([10, 20, 30]), cfg, score, seed=0)
    assert gen.n_drawn == 21 and gen.n_used == {"10": 7, "20": 0, "30": 0}
    assert gen.inputs.shape == (7, 4, 4, 1) and np.all(gen.codes == 0)
    assert gen.grid.shape == (3, 4, 4, 4, 1)
    assert np.all(gen.grid[0] == 10) and np.all(gen.grid[1:] == generated.BLANK)
    lower = generate_labelled(Filled(), np.array([10, 20, 30]),
                              GenAugmentConfig(enabled=True, per_class=7, min_confidence=0.5),
                              score, seed=0)
    assert lower.n_used == {"10": 7, "20": 7, "30": 0}        # argmax must be the drawn class


def _no_generator(*args, **kwargs):
    raise AssertionError("no generator may be trained or used with the option off")


@pytest.mark.parametrize("method, module, extra, n_rows", [
    ("baseline", baseline_module, {}, 50),
    ("vae", vae_method, {"small_vae": FAST_VAE, "min_classifier_s": 0.0}, 1797),
    ("default", default_method, {"min_images_for_cnn": 1000, "rounds": 1,
                                 "small_width": (8, 16, 16)}, 1797),
])
def test_option_off_is_todays_fit(digits, monkeypatch, method, module, extra, n_rows):
    X, y, _ = digits
    monkeypatch.setattr(module, "prepare_generator", _no_generator)
    monkeypatch.setattr(module, "generate_labelled", _no_generator)
    calls = spy(monkeypatch, module)
    key = {"default": "cnn", "vae": "classifier", "baseline": "classifier"}[method]
    model = make_estimator(method, 0, **{key: FAST}, **extra)
    assert not model.gen_augment.enabled                        # off by default
    model.fit(X, y, time_budget_s=60)
    assert calls and calls[-1][0] == n_rows                    # the real rows only
    assert model.gen_augment_ is None and model.gen_grid_ is None
    state = model._state()
    assert "gen_augment" not in state and "gen_grid" not in state


def test_methods_without_the_option_refuse_it():
    with pytest.raises(ValueError, match="SSL-GAN uses its own"):
        gen_augment_for("gan")
    with pytest.raises(ValueError, match="weight"):
        gen_augment_for("default", weight=0.0)


def test_train_job_records_the_option_and_writes_the_grid(digits_project, tmp_path):
    from test_trainjob import label_five_per_class
    project = digits_project
    label_five_per_class(project)
    job_id = worker.launch(project, "train", {"method": "baseline", "budget_s": 8,
                                              "gen_augment": True, "gen_per_class": 10,
                                              "gen_weight": 0.5})
    job = wait_for(project, job_id, lambda j: j.status.finished, timeout=120)
    assert job.status is jobs.JobStatus.SUCCEEDED, job.error
    run = list_runs(project.store)[0]
    assert run.config["gen_augment"]["per_class"] == 10 and run.config["gen_augment"]["weight"] == 0.5
    record = run.summary["gen_augment"]
    assert record["enabled"] and record["n_drawn"] == 100 and record["source"] == "vae"
    assert history_frame(project.store).iloc[0]["generated images"] == record["n_used_total"]
    assert any(line.strip().startswith("generated images:")
               for line in summary_lines(run.id, "baseline", run.summary))
    assert load_model(run.summary["model"]).gen_augment_ == record
    assert generated_path(project, run.id).is_file() == (record["n_used_total"] > 0)

    class Ctx:                          # the grid is written for a kept set
        def __init__(self):
            self.project = project

        def check_claim(self):
            pass

    class Fitted:
        gen_augment_ = {**record, "n_used_total": 3}
        gen_grid_ = np.zeros((10, 8, 8, 8, 1), np.uint8)
    assert train_job._generated(Ctx(), 999, Fitted()) == Fitted.gen_augment_
    assert generated_path(project, 999).is_file()


def test_readme_block_pairs_with_and_without_by_seed():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from readme import gen_augment as block

    def row(seed, acc, gen, used=0):
        r = {"dataset": "mnist", "method": "vae", "labels_per_class": 5, "budget_s": 180.0,
             "seed": seed, "seconds": 170.0, "protocol": "inductive",
             "test_accuracy_inductive": acc, "gen_augment": gen}
        return {**r, "gen_n_used": used, "gen_n_drawn": 2000, "gen_note": ""} if gen else r
    rows = [row(0, 0.95, False), row(1, 0.96, False), row(0, 0.97, True, 900),
            row(1, 0.955, True, 1100)]
    lines = block.table(rows)
    assert len(lines) == 3 and lines[2].startswith("| mnist, inductive | vae | 5 |")
    assert "+0.75 points (-0.50 to +2.00, 2 seeds)" in lines[2]
    assert "1,000 (900–1,100, 2 runs) of 2,000" in lines[2]


def test_train_page_offers_the_option_and_shows_the_grid_of_a_run_that_used_it(monkeypatch,
                                                                                tmp_path):
    from conftest import REPO
    from streamlit.testing.v1 import AppTest

    from ssl_core.data.importer import import_source
    from ssl_core.jobs.train_progress import write_generated
    from ssl_core.labeling.classes import add_class
    from ssl_core.labeling.label_log import set_labels
    from ssl_core.project.folder import Project, projects_dir
    from ssl_core.results.runs import create_run, finish_run

    monkeypatch.setenv("LATENTLAB_HOME", str(tmp_path / "home"))
    project = Project.create(projects_dir() / "digits")
    import_source(project, SourceSpec("digits"))
    for d in range(2):
        set_labels(project.store, [10 * d, 10 * d + 1], add_class(project.store, str(d)).id)
    record = generated.record(GenAugmentConfig(enabled=True, per_class=10), None,
                              generator="VAE trained here on 1,797 images (5 s)", stage="baseline")
    record.update(n_drawn=20, n_used={"1": 4, "2": 3}, n_used_total=7)
    run_id = create_run(project.store, "baseline", {"gen_augment": {"per_class": 10}}, 4)
    write_generated(project, run_id, np.zeros((2, 8, 8, 8, 1), np.uint8))
    finish_run(project.store, run_id, {"n_labels": 4, "gen_augment": record})
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    assert any(c.value.startswith("generated images: 7 of 20 drawn kept") for c in at.caption)
    assert sum(type(e).__name__ == "Image" for e in at.main) == 1      # the grid
    assert at.checkbox(key="train_gen").disabled is False             # default method: offered
    at.selectbox(key="train_method").set_value("gan").run()
    assert at.checkbox(key="train_gen").disabled is True
    at.selectbox(key="train_method").set_value("baseline").run()
    at.checkbox(key="train_gen").check().run()
    at.number_input(key="train_gen_per_class").set_value(30).run()
    at.button(key="train_retrain").click().run()
    assert not at.exception, at.exception
    job = [j for j in jobs.active_jobs(project.store) if j.kind == "train"][-1]
    jobs.request_cancel(project.store, job.id)
    assert job.params["gen_augment"] is True and job.params["gen_per_class"] == 30
    assert job.params["gen_weight"] == GenAugmentConfig().weight


def test_cli_train_offers_the_option_and_refuses_it_for_the_gan(project, capsys):
    from ssl_core import cli

    args = cli._parser().parse_args(["train", "--project", "p", "--gen-augment",
                                     "--gen-per-class", "30", "--gen-weight", "0.5"])
    assert args.gen_augment and args.gen_per_class == 30 and args.gen_weight == 0.5
    assert cli.main(["train", "--project", str(project.root), "--method", "gan",
                     "--gen-augment"]) == 1
    assert "SSL-GAN uses its own" in capsys.readouterr().err
