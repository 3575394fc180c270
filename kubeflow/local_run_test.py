"""The local KFP executor's resolver queries, trigger conditions and cache, on constructed
artifacts and small specs (the pipeline's own tasks run in tests/test_runner_decisions.py)."""

import json

import pytest

from kubeflow.local_run import (
    ArtifactStore,
    Condition,
    LocalRun,
    TaskFailed,
    modules_to_preload,
    order,
)
from pipeline.preloaded import start_preloading


def artifact(name: str, title: str, **metadata) -> dict:
    return {"name": name, "schema_title": title, "uri": f"/x/{name}", "metadata": metadata}


def store_of(tmp_path, *artifacts) -> ArtifactStore:
    store = ArtifactStore(tmp_path / "artifacts.json")
    for item in artifacts:
        store.add(item)
    return store


def blessed_m1_then_m2() -> list[dict]:
    """Model m1 blessed, then a newer model m2."""
    return [
        artifact("m1", "tfx.Model"),
        artifact("b1", "tfx.ModelBlessing", blessed=1.0, current_model_id="m1"),
        artifact("m2", "tfx.Model"),
    ]


BLESSED = 'schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1'


def test_queries_match_type_state_metadata_and_name_and_yield_the_latest(tmp_path):
    store = store_of(
        tmp_path,
        *blessed_m1_then_m2(),
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


def test_resolvers_chain_through_a_placeholder(tmp_path):
    store = store_of(tmp_path, *blessed_m1_then_m2())
    spec = resolver_spec()
    assert order(spec["pipelineSpec"]["root"]["dag"]["tasks"]) == ["blessing", "model"]
    run = LocalRun(spec, tmp_path, store, "run-1")
    run.run()
    state = json.loads((tmp_path / "runs" / "run-1.json").read_text())
    assert state["complete"] and state["tasks"]["model"]["outputs"] == {"model": ["m1"]}
    assert state["tasks"]["model"]["inputs"] == {"input": ["b1"]}


def test_conditions_read_input_metadata_and_uris_as_tfx_compiles_them():
    inputs = {"_Check.verdict": [artifact("v", "tfx.Metrics", to_judge=1, span=3)]}
    ref = "inputs.artifacts['_Check.verdict'].artifacts[0]"
    for expression, expected in [
        (f"({ref}.metadata['to_judge'] == 1.0)", True),
        (f"!(({ref}.metadata['to_judge'] == 1.0))", False),
        (f"(({ref}.metadata['span'] > 2.0) && ({ref}.metadata['to_judge'] < 1.0))", False),
        (f"(({ref}.metadata['span'] > 2.0) || ({ref}.metadata['to_judge'] < 1.0))", True),
        (f"({ref}.uri == '/x/v') && ({ref}.metadata['span'] == 3.0)", True),
        (f"({ref}.metadata['span'] > 1e-05)", True),
        # CEL's short circuit: the side not needed is not evaluated, nor its error.
        (f"({ref}.metadata['span'] < 0.0) && ({ref}.metadata['missing'] == 1.0)", False),
        (f"({ref}.metadata['span'] > 0.0) || ({ref}.metadata['missing'] == 1.0)", True),
    ]:
        assert Condition(expression, inputs).holds() is expected, expression
    with pytest.raises(ValueError, match="no metadata"):
        Condition(f"({ref}.metadata['missing'] == 1.0)", inputs).holds()
    with pytest.raises(ValueError, match="compares"):
        Condition(f"({ref}.uri > 1.0)", inputs).holds()
    with pytest.raises(ValueError, match="Unsupported condition"):
        Condition(f"size({ref}) > 0", inputs).holds()


# A container task writing an artifact with metadata to_judge=0, and one conditional on it.
WRITER = (
    "import json, sys; i = json.loads(sys.argv[1]); open(sys.argv[2], 'a').write('ran\\n');"
    " out = {'artifacts': {'verdict': {'artifacts': [{'metadata': {'to_judge': 0}}]}}};"
    " open(i['outputs']['outputFile'], 'w').write(json.dumps(out))"
)


def cached_and_conditional_spec(log) -> dict:
    verdict = {"artifactType": {"schemaTitle": "tfx.Metrics"}}
    container = {"image": "x", "command": ["python", "-c", WRITER], "args": ["{{$}}", str(log)]}
    condition = "(inputs.artifacts['_check.verdict'].artifacts[0].metadata['to_judge'] == 1.0)"
    reads_verdict = {
        "taskOutputArtifact": {"producerTask": "check", "outputArtifactKey": "verdict"}
    }
    return {
        "pipelineSpec": {
            "root": {
                "dag": {
                    "tasks": {
                        "check": {
                            "componentRef": {"name": "check"},
                            "cachingOptions": {"enableCache": True},
                        },
                        "push": {
                            "componentRef": {"name": "push"},
                            "inputs": {"artifacts": {"_check.verdict": reads_verdict}},
                            "triggerPolicy": {"condition": condition},
                        },
                        # After the push by an edge alone (TFX's add_upstream_node).
                        "after": {"componentRef": {"name": "check"}, "dependentTasks": ["push"]},
                    }
                }
            },
            "components": {
                "check": {
                    "executorLabel": "check_executor",
                    "outputDefinitions": {"artifacts": {"verdict": verdict}},
                },
                "push": {
                    "executorLabel": "check_executor",
                    "inputDefinitions": {"artifacts": {"_check.verdict": verdict}},
                },
            },
            "deploymentSpec": {"executors": {"check_executor": {"container": container}}},
        }
    }


def test_a_task_with_the_same_cache_key_is_reused_and_a_false_condition_skips(tmp_path):
    log = tmp_path / "ran.log"
    spec = cached_and_conditional_spec(log)
    store = store_of(tmp_path)
    first = LocalRun(spec, tmp_path, store, "run-1")
    first.run()
    second = LocalRun(spec, tmp_path, store, "run-2")
    second.run()
    assert log.read_text() == "ran\n"  # the second run's task came from the cache
    assert second.state["tasks"]["check"]["state"] == "CACHED"
    assert second.state["tasks"]["check"]["outputs"] == first.state["tasks"]["check"]["outputs"]
    assert store.by_name(first.state["tasks"]["check"]["outputs"]["verdict"][0])["metadata"] == {
        "to_judge": 0
    }
    for run in (first, second):
        assert run.state["tasks"]["push"]["state"] == "SKIPPED"
        assert run.state["tasks"]["after"]["state"] == "SKIPPED"


@pytest.mark.parametrize("preloaded", [True, False], ids=["forked", "fresh"])
def test_a_step_runs_as_its_module_and_a_failing_one_is_named(tmp_path, preloaded):
    """`python -m json.tool IN OUT` writes OUT: the step's executor output file."""
    (tmp_path / "in.json").write_text('{"parameterValues": {"span": 3}}')
    output_file = tmp_path / "executor_output.json"
    executor_input = {"outputs": {"outputFile": str(output_file)}}
    store = store_of(tmp_path)
    run = LocalRun(resolver_spec(), tmp_path, store, "run-1", preloaded)
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
