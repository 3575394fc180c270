"""Several models, version policies and version labels, rule by rule as TF Serving's own tests
state them (model_servers/server_core_test.cc, named in each test's docstring), on tiny
SavedModels that answer their own version number."""

import shutil
import threading
from pathlib import Path

import pytest
import tensorflow as tf

from serving.model_config import LATEST, ConfigError, ModelConfig, VersionPolicy
from serving.model_registry import LabelError, ModelRegistry, UnknownLabel


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A SavedModel whose serving_default answers `version`: its folder's number, read from an
    asset, so a copy under another number answers that number."""

    class Tiny(tf.Module):
        def __init__(self, version_file: str):
            super().__init__()
            self.version_file = tf.saved_model.Asset(version_file)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, images):
            version = tf.strings.to_number(tf.io.read_file(self.version_file), tf.int64)
            return {"version": tf.fill(tf.shape(images), version)}

    source = tmp_path_factory.mktemp("tiny")
    (source / "version.txt").write_text("0")
    module = Tiny(str(source / "version.txt"))
    path = source / "model"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def add_version(base: Path, version: int, tiny_model: Path) -> None:
    shutil.copytree(tiny_model, base / str(version))
    (base / str(version) / "assets" / "version.txt").write_text(str(version))


@pytest.fixture()
def bases(tmp_path, tiny_model) -> dict[str, Path]:
    """Two models: `a` with versions 1, 2 and 3, `b` with version 7."""
    versions = {"a": (1, 2, 3), "b": (7,)}
    for name, numbers in versions.items():
        for number in numbers:
            add_version(tmp_path / name, number, tiny_model)
    return {name: tmp_path / name for name in versions}


def answer(registry: ModelRegistry, name: str, version=None, label=None) -> int:
    loaded = registry.resolve(name, version, label)
    return int(loaded.model.signatures["serving_default"](tf.constant([b""]))["version"][0])


def config(bases, name="a", policy=LATEST, **labels) -> ModelConfig:
    return ModelConfig(name, bases[name], policy, tuple(sorted(labels.items())))


@pytest.fixture()
def registry():
    registry = ModelRegistry(poll_interval_s=0.1)
    yield registry
    registry.stop()


def test_the_latest_version_a_number_and_labels(registry, bases):
    """ModelSpecMultipleVersionsAvailable: no version is the latest, a number is that version,
    a label its version, and a label no version carries is refused."""
    registry.apply([config(bases, policy=VersionPolicy("all"))])
    assert answer(registry, "a") == 3
    assert answer(registry, "a", 1) == 1
    registry.apply([config(bases, policy=VersionPolicy("all"), A=1, B=3)])
    assert answer(registry, "a", label="A") == 1
    assert answer(registry, "a", label="B") == 3
    with pytest.raises(UnknownLabel, match="Unrecognized servable version label: nonexistent"):
        answer(registry, "a", label="nonexistent")
    for name, label in (("a", ""), ("no_such_model", "A")):  # looked up first, as TF Serving does
        with pytest.raises(UnknownLabel, match=f"Unrecognized servable version label: {label}$"):
            registry.resolve(name, None, label)


def test_a_label_for_a_version_not_available_is_refused_and_the_running_config_stays(
    registry, bases
):
    """AssignLabelToUnavailableVersion."""
    registry.apply([config(bases, stable=3)])
    with pytest.raises(LabelError, match="not currently available for inference"):
        registry.apply([config(bases, stable=3, canary=2)])  # `latest` serves only 3
    assert registry.labels("a") == {"stable": 3}
    assert answer(registry, "a", label="stable") == 3


def test_a_new_label_may_name_an_unavailable_version_where_allowed(bases):
    """AssignLabelToUnavailableVersionAllowed (--allow_version_labels_for_unavailable_models)."""
    registry = ModelRegistry(allow_labels_for_unavailable=True)
    try:
        registry.apply([config(bases, canary=99)])
        assert registry.labels("a") == {"canary": 99}
    finally:
        registry.stop()


def test_an_existing_label_moves_only_to_an_available_version_even_where_allowed(bases):
    """AssignExistingLabelToUnavailableVersionDisallowed."""
    registry = ModelRegistry(allow_labels_for_unavailable=True)
    try:
        registry.apply([config(bases, policy=VersionPolicy("all"), A=1, B=2)])
        with pytest.raises(LabelError, match="not currently available for inference"):
            registry.apply([config(bases, policy=VersionPolicy("all"), A=99, B=2)])
        assert registry.labels("a") == {"A": 1, "B": 2}
    finally:
        registry.stop()


def test_version_policies_latest_all_and_specific(registry, bases):
    """The version policies of ModelVersionPolicy; a request for a version the policy does not
    serve is NOT_FOUND in TF Serving's words."""
    registry.apply([config(bases, policy=VersionPolicy("latest", num_versions=2))])
    assert sorted(registry.model("a")._served) == [2, 3]
    with pytest.raises(LookupError, match=r"Servable not found for request: Specific\(a, 1\)"):
        registry.resolve("a", 1, None)
    registry.apply([config(bases, policy=VersionPolicy("specific", versions=frozenset({1, 2})))])
    assert sorted(registry.model("a")._served) == [1, 2]
    assert answer(registry, "a") == 2  # the highest of those served
    registry.apply([config(bases, policy=VersionPolicy("all"))])
    states = registry.model("a").states()
    assert {v: s.state for v, s in states.items()} == dict.fromkeys((1, 2, 3), "AVAILABLE")


def test_several_models_and_a_reload_that_drops_one_then_brings_it_back(registry, bases):
    """ReloadConfigUnloadsModels, ReloadConfigHandlesLoadingAPreviouslyUnloadedModel."""
    registry.apply([config(bases, "a"), config(bases, "b")])
    assert (answer(registry, "a"), answer(registry, "b")) == (3, 7)
    registry.apply([config(bases, "a")])
    with pytest.raises(LookupError, match=r"Servable not found for request: Latest\(b\)"):
        registry.resolve("b", None, None)
    registry.apply([config(bases, "a"), config(bases, "b")])
    assert answer(registry, "b") == 7


def test_a_reload_may_change_a_models_base_path(registry, bases):
    """ReloadConfigChangeModelBasePath."""
    registry.apply([config(bases, "a")])
    registry.apply([ModelConfig("a", bases["b"])])
    assert answer(registry, "a") == 7


def test_a_refused_reload_changes_nothing_requests_see(registry, bases):
    """A reload that adds a model and changes a policy, refused for a label: the running
    configuration serves on, untouched, and the models started for the reload stop."""
    registry.apply([config(bases, "a", stable=3)])
    served = registry.model("a")

    def pollers() -> int:
        return sum(thread.name == "poller" for thread in threading.enumerate())

    running = pollers()
    wider = VersionPolicy("all")
    with pytest.raises(ConfigError):
        registry.apply([config(bases, "a", wider, stable=3), config(bases, "b", canary=8)])
    assert registry.names == ["a"] and registry.model("a") is served
    assert sorted(served._served) == [3] and registry.labels("a") == {"stable": 3}
    assert pollers() == running


def test_a_policy_change_keeps_the_versions_both_policies_serve_loaded(registry, bases):
    registry.apply([config(bases, policy=VersionPolicy("latest", num_versions=2))])
    three = registry.resolve("a", 3, None)
    registry.apply([config(bases, policy=VersionPolicy("all"))])
    assert registry.resolve("a", 3, None) is three  # not loaded again
    assert sorted(registry.model("a")._served) == [1, 2, 3]


def test_a_label_moved_while_requests_run_answers_each_with_a_version_that_carried_it(
    registry, bases
):
    """A request resolves its label once, as it arrives: moving the label between versions 1
    and 2 while four threads ask for it never fails a request, and each is answered by 1 or
    2, never by 3, the latest."""
    both = VersionPolicy("all")
    registry.apply([config(bases, policy=both, stable=1)])
    answers, errors, done = [], [], threading.Event()

    def ask() -> None:
        while not done.is_set():
            try:
                answers.append(answer(registry, "a", label="stable"))
            except Exception as error:  # noqa: BLE001 (counted: there must be none)
                errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    flips = 0
    while len(answers) < 400 or flips < 20:
        registry.apply([config(bases, policy=both, stable=1 + flips % 2)])
        flips += 1
    done.set()
    for thread in threads:
        thread.join()
    assert errors == [] and set(answers) == {1, 2}
