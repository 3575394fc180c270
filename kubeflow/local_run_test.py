"""The local KFP executor's resolver queries and its resume, on constructed artifacts and a
spec of resolver tasks (the container tasks run in tests/test_kubeflow_local.py)."""

import json

import pytest

from kubeflow.local_run import (
    ArtifactStore,
    LocalRun,
    TaskFailed,
    modules_to_preload,
    order,
    start_or_continue,
)
from pipeline.preloaded import start_preloading


def artifact(name: str, title: str, **metadata) -> dict:
    return {"name": name, "schema_title": title, "uri": f"/x/{name}", "metadata": metadata}


def store_of(tmp_path, *artifacts) -> ArtifactStore:
    store = ArtifactStore(tmp_path / "artifacts.json")
    for item in artifacts:
        store.add(item)
    return store


BLESSED = 'schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1'


def test_queries_match_type_state_metadata_and_name_and_yield_the_latest(tmp_path):
    store = store_of(
        tmp_path,
        artifact("m1", "tfx.Model"),
        artifact("b1", "tfx.ModelBlessing", blessed=1.0, current_model_id="m1"),
        artifact("m2", "tfx.Model"),
        artifact("b2", "tfx.ModelBlessing", blessed=0.0, current_model_id="m2"),
    )
    assert [a["name"] for a in store.query(BLESSED)] == ["b1"]  # b2 is later but not blessed
    assert [a["name"] for a in store.query('schema_title="tfx.Model" AND name="m1"')] == ["m1"]
    assert [a["name"] for a in store.query('schema_title="tfx.Model" AND state=LIVE')] == ["m2"]
    assert store.query('schema_title="tfx.ExampleStatistics" AND state=LIVE') == []
    assert ArtifactStore(tmp_path / "artifacts.json").artifacts == store.artifacts  # persisted


def resolver_spec() -> dict:
    """The two-step blessed-model resolution TFX compiles for KFP v2."""
    model_filter = (
        'schema_title="tfx.Model" AND state=LIVE AND '
        "name=\"{{$.inputs.artifacts['input'].metadata['current_model_id']}}\""
    )
    return {
        "pipelineSpec": {
            "root": {
                "dag": {
                    "tasks": {
                        "model": {
                            "componentRef": {"name": "model"},
                            "inputs": {
                                "artifacts": {
                                    "input": {
                                        "taskOutputArtifact": {
                                            "producerTask": "blessing",
                                            "outputArtifactKey": "model_blessing",
                                        }
                                    }
                                }
                            },
                        },
                        "blessing": {"componentRef": {"name": "blessing"}},
                    }
                }
            },
            "components": {
                "blessing": {"executorLabel": "blessing_executor"},
                "model": {"executorLabel": "model_executor"},
            },
            "deploymentSpec": {
                "executors": {
                    "blessing_executor": {
                        "resolver": {
                            "outputArtifactQueries": {"model_blessing": {"filter": BLESSED}}
                        }
                    },
                    "model_executor": {
                        "resolver": {"outputArtifactQueries": {"model": {"filter": model_filter}}}
                    },
                }
            },
        }
    }


def test_resolvers_chain_through_a_placeholder_and_a_failed_run_continues(tmp_path):
    store_of(
        tmp_path,
        artifact("m1", "tfx.Model"),
        artifact("b1", "tfx.ModelBlessing", blessed=1.0, current_model_id="m1"),
        artifact("m2", "tfx.Model"),
    )
    spec = resolver_spec()
    assert order(spec["pipelineSpec"]["root"]["dag"]["tasks"]) == ["blessing", "model"]
    # A run that failed after its first task: the next try keeps that task's outputs.
    interrupted = {"done": {"blessing": {"model_blessing": ["b1"]}}, "complete": False}
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "run-1.json").write_text(json.dumps(interrupted))
    run = start_or_continue(tmp_path, spec)
    assert isinstance(run, LocalRun) and run.run_id == "run-1"
    run.run()
    state = json.loads((tmp_path / "runs" / "run-1.json").read_text())
    assert state == {
        "done": {"blessing": {"model_blessing": ["b1"]}, "model": {"model": ["m1"]}},
        "complete": True,
    }
    assert start_or_continue(tmp_path, spec).run_id != "run-1"  # complete: a new run


@pytest.mark.parametrize("preloaded", [True, False], ids=["forked", "fresh"])
def test_a_step_runs_as_its_module_and_a_failing_one_is_named(tmp_path, preloaded):
    """`python -m json.tool IN OUT` writes OUT: the step's executor output file."""
    (tmp_path / "in.json").write_text('{"parameterValues": {"span": 3}}')
    output_file = tmp_path / "executor_output.json"
    executor_input = {"outputs": {"outputFile": str(output_file)}}
    store = store_of(tmp_path)
    run = LocalRun(resolver_spec(), tmp_path, store, "run-1", {"done": {}}, preloaded)
    if preloaded:
        start_preloading(["json.tool"])
    step = {"command": ["python", "-m", "json.tool"], "args": [str(tmp_path / "in.json"), "{{$}}"]}
    with pytest.raises(
        TaskFailed, match=r"(?s)task Trainer failed \(exit 1\).*json.tool .*\{\{\$\}\}"
    ):
        run.launch("Trainer", step, executor_input, tmp_path / "Trainer.log")  # {{$}}: no file
    assert "No such file or directory" in (tmp_path / "Trainer.log").read_text()
    step["args"][1] = str(output_file)
    written = run.launch("Trainer", step, executor_input, tmp_path / "Trainer.log")
    assert written == {"parameterValues": {"span": 3}}


def test_the_preloaded_modules_are_the_steps_and_their_executor_classes():
    spec = {
        "deploymentSpec": {
            "executors": {
                "a": {
                    "container": {
                        "command": ["python", "-m", "tfx.run_executor"],
                        "args": ["--executor_class_path", "components.spans.Executor", "{{$}}"],
                        "lifecycle": {
                            "preCacheCheck": {"command": ["python", "-m", "tfx.driver"], "args": []}
                        },
                    }
                },
                "b": {"container": {"command": ["sh", "-c", "true"], "args": []}},
                "c": {"resolver": {}},
            }
        }
    }
    assert modules_to_preload(spec) == ["components.spans", "tfx.driver", "tfx.run_executor"]
