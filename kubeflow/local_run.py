"""`make kubeflow-local`: compiles the KFP v2 spec as `make kubeflow` does, then executes that
JSON on this machine the way KFP v2's launcher would, to prove each task before a cluster does.

Tasks run in dependency order. A container task gets the ExecutorInput KFP would pass as `{{$}}`
(its parameters from the spec, input artifacts from earlier tasks, output artifacts under the
pipeline root) and runs its `command` and `args` with this project's `.venv` in place of the
image, its `lifecycle.preCacheCheck` driver first where it has one (ExampleGen's); the executor
output file it writes updates its artifacts. A resolver task evaluates its
`outputArtifactQueries` filter against every artifact earlier runs of the spec produced (held in
a JSON store beside them, standing in for Vertex ML Metadata) and yields the latest match.

Only the places differ from the cluster's: the pipeline root, data root and serving base are
under outputs/kubeflow-local/, the schema is read from the checkout, and Beam runs in the task.
A failed run stops at the failing task, naming it, its command and its log's tail; the next run
continues that run from the failed task, keeping the artifacts made before it.

A `python -m <module>` step starts as a fork of one interpreter that has already imported the
spec's entry points and executor classes (pipeline/preloaded.py), then runs the module as
`__main__` with the step's arguments, as the container's Python would. Importing TFX costs 5-9 s
per task otherwise; `--fresh-processes` starts every step in a new interpreter instead.
"""

import argparse
import dataclasses
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from components.data.sample import write_sample
from kubeflow.runner import compile_pipeline
from kubeflow.settings import KubeflowSettings
from pipeline.local_runner import run_cli
from pipeline.preloaded import run_module, start_preloading
from pipeline.settings import MNIST_SCHEMA, Settings

SCHEMA_TITLE = re.compile(r"^title: (\S+)$", re.MULTILINE)
PLACEHOLDER = re.compile(r"\{\{\$\.inputs\.artifacts\['([^']+)'\]\.metadata\['([^']+)'\]\}\}")
CLAUSE = re.compile(r"^(schema_title|state|name|metadata\.(\w+)\.(\w+))\s*=\s*(.+)$")


class TaskFailed(RuntimeError):
    """A spec task that failed; the message names it, its command and its log's tail."""


def local_places(settings: Settings, root: Path) -> KubeflowSettings:
    """The Kubeflow settings of the environment with this machine's places."""
    return dataclasses.replace(
        KubeflowSettings.from_env(),
        kubeflow_pipeline_root=str(root / "pipeline_root"),
        kubeflow_data_root=str(settings.sample_root),
        kubeflow_serving_base=str(root / "serving_model"),
        schema=str(MNIST_SCHEMA),
        beam_runner="DirectRunner",
        vertex_training=False,
    )


class ArtifactStore:
    """Every artifact the spec's runs produced, in a JSON file: what resolver queries read."""

    def __init__(self, path: Path):
        self.path = path
        self.artifacts: list[dict] = json.loads(path.read_text()) if path.exists() else []

    def add(self, artifact: dict) -> None:
        self.artifacts.append(artifact)
        self.path.write_text(json.dumps(self.artifacts, indent=1))

    def by_name(self, name: str) -> dict:
        return next(a for a in self.artifacts if a["name"] == name)

    def new_name(self, run_id: str, task: str, key: str) -> str:
        """A name no artifact has, as Vertex ML Metadata's resource names are unique."""
        return f"local/artifacts/{len(self.artifacts) + 1}-{run_id}-{task}-{key}"

    def query(self, expression: str) -> list[dict]:
        """The latest artifact matching a KFP filter of `AND`ed clauses (schema_title, state,
        name, metadata.<key>.<number_value|string_value>), as a list of at most one."""
        clauses = [clause.strip() for clause in expression.split(" AND ")]
        matches = [a for a in self.artifacts if all(matches_clause(a, c) for c in clauses)]
        return matches[-1:]


def matches_clause(artifact: dict, clause: str) -> bool:
    match = CLAUSE.match(clause)
    if not match:
        raise ValueError(f"Unsupported resolver filter clause: {clause!r}")
    field, key, kind, value = match.groups()
    value = value.strip().strip('"')
    if field == "schema_title":
        return artifact["schema_title"] == value
    if field == "state":
        return value == "LIVE"  # artifacts here are never deleted
    if field == "name":
        return artifact["name"] == value
    found = artifact["metadata"].get(key)
    if kind == "number_value":
        return isinstance(found, (int, float)) and float(found) == float(value)
    return found == value


def legacy_value(value) -> dict:
    """A JSON parameter value as the Value message the executor reads its parameters from."""
    if isinstance(value, str):
        return {"stringValue": value}
    if float(value).is_integer():
        return {"intValue": str(int(value))}
    return {"doubleValue": value}


def schema_title(artifact_type: dict) -> str:
    return (
        artifact_type.get("schemaTitle") or SCHEMA_TITLE.search(artifact_type["instanceSchema"])[1]
    )


def runtime_artifact(artifact: dict, artifact_type: dict) -> dict:
    return {
        "name": artifact["name"],
        "type": artifact_type,
        "uri": artifact["uri"],
        "metadata": artifact["metadata"],
    }


def order(tasks: dict) -> list[str]:
    """Task names, each after the tasks it depends on or reads from."""

    def needs(name: str) -> set[str]:
        task = tasks[name]
        readers = task.get("inputs", {}).get("artifacts", {}).values()
        return set(task.get("dependentTasks", [])) | {
            a["taskOutputArtifact"]["producerTask"] for a in readers if "taskOutputArtifact" in a
        }

    done: list[str] = []
    while len(done) < len(tasks):
        ready = sorted(n for n in tasks if n not in done and needs(n) <= set(done))
        if not ready:
            raise ValueError("The spec's tasks form a cycle")
        done.append(ready[0])
    return done


def python_module(command: list[str]) -> str | None:
    """The module of a `python -m <module>` command, else None."""
    return command[2] if len(command) == 3 and command[:2] == ["python", "-m"] else None


def steps_of(spec: dict) -> list[dict]:
    """Every container step of the spec: executors and their drivers."""
    containers = [
        e["container"] for e in spec["deploymentSpec"]["executors"].values() if "container" in e
    ]
    drivers = [c["lifecycle"]["preCacheCheck"] for c in containers if "lifecycle" in c]
    return containers + drivers


def modules_to_preload(spec: dict) -> list[str]:
    """The modules the spec's steps run and the modules of the executor classes they load."""
    modules = set()
    for step in steps_of(spec):
        if module := python_module(step["command"]):
            modules.add(module)
        args = step.get("args", [])
        if "--executor_class_path" in args:
            modules.add(args[args.index("--executor_class_path") + 1].rpartition(".")[0])
    return sorted(modules)


class LocalRun:
    """One execution of the spec; its state (tasks done, their outputs) is kept in a file so
    that a failed run can continue."""

    def __init__(
        self,
        spec: dict,
        root: Path,
        store: ArtifactStore,
        run_id: str,
        state: dict,
        preloaded: bool = False,  # python -m steps fork the preloaded interpreter
    ):
        self.spec = spec["pipelineSpec"]
        self.preloaded = preloaded
        self.root = root
        self.store = store
        self.run_id = run_id
        self.state = state  # {"done": {task: {output key: [artifact names]}}, "complete": bool}
        self.state_path = root / "runs" / f"{run_id}.json"

    def save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(self.state, indent=1))

    def inputs_of(self, task: dict) -> dict:
        """{input name: [artifact records]} from the producing tasks' outputs."""
        found = {}
        for name, source in task.get("inputs", {}).get("artifacts", {}).items():
            producer = source["taskOutputArtifact"]
            names = self.state["done"][producer["producerTask"]].get(
                producer["outputArtifactKey"], []
            )
            if names:
                found[name] = [self.store.by_name(n) for n in names]
        return found

    def resolve(self, name: str, task: dict, component: dict, executor: dict) -> dict:
        inputs = self.inputs_of(task)
        outputs = {}
        for key, query in executor["resolver"]["outputArtifactQueries"].items():

            def fill(match: re.Match) -> str:
                records = inputs.get(match[1], [])
                return str(records[0]["metadata"].get(match[2], "")) if records else ""

            outputs[key] = [
                a["name"] for a in self.store.query(PLACEHOLDER.sub(fill, query["filter"]))
            ]
        return outputs

    def execute(self, name: str, task: dict, component: dict, executor: dict, log: Path) -> dict:
        definitions = component.get("inputDefinitions", {}).get("artifacts", {})
        task_root = self.root / "pipeline_root" / self.run_id / name
        outputs = {}
        for key, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items():
            record = {
                "name": self.store.new_name(self.run_id, name, key),
                "schema_title": schema_title(definition["artifactType"]),
                "uri": str(task_root / key),
                "metadata": {},
            }
            outputs[key] = (record, definition["artifactType"])
        parameters = {
            key: value["runtimeValue"]["constantValue"]
            for key, value in task.get("inputs", {}).get("parameters", {}).items()
        }
        executor_input = {
            "inputs": {
                "parameters": parameters,
                "artifacts": {
                    key: {
                        "artifacts": [
                            runtime_artifact(a, definitions[key]["artifactType"]) for a in records
                        ]
                    }
                    for key, records in self.inputs_of(task).items()
                },
            },
            "outputs": {
                "artifacts": {
                    key: {"artifacts": [runtime_artifact(record, artifact_type)]}
                    for key, (record, artifact_type) in outputs.items()
                },
                "outputFile": str(task_root / "executor_output.json"),
            },
        }
        task_root.mkdir(parents=True, exist_ok=True)
        (task_root / "executor_output.json").unlink(missing_ok=True)
        container = executor["container"]
        if "lifecycle" in container:  # a driver, whose updated parameters the executor gets
            driver = container["lifecycle"]["preCacheCheck"]
            updates = self.launch(name, driver, executor_input, log)
            for key, value in updates.get("parameterValues", {}).items():
                parameters[key] = legacy_value(value)
        written = self.launch(name, container, executor_input, log)
        for key, (record, _) in outputs.items():
            for artifact in written.get("artifacts", {}).get(key, {}).get("artifacts", []):
                record["metadata"].update(artifact.get("metadata", {}))
                record["uri"] = artifact.get("uri", record["uri"])
            record.update({"run": self.run_id, "task": name, "key": key, "state": "LIVE"})
            self.store.add(record)
        return {key: [record["name"]] for key, (record, _) in outputs.items()}

    def launch(self, name: str, step: dict, executor_input: dict, log: Path) -> dict:
        """Runs a container step with `{{$}}` filled in; returns the executor output it wrote."""
        output_file = Path(executor_input["outputs"]["outputFile"])
        command = [sys.executable if part == "python" else part for part in step["command"]]
        serialized = json.dumps(executor_input)
        args = [serialized if arg == "{{$}}" else arg for arg in step["args"]]
        module = python_module(step["command"])
        if self.preloaded and module:
            exit_code = run_module(module, args, log)
        else:
            with open(log, "a") as log_file:
                exit_code = subprocess.run(
                    [*command, *args], stdout=log_file, stderr=subprocess.STDOUT
                ).returncode
        if exit_code:
            shown = ["{{$}}" if arg == serialized else arg for arg in args]
            tail = "\n".join(log.read_text().splitlines()[-25:])
            raise TaskFailed(
                f"task {name} failed (exit {exit_code})\n  command: "
                f"{' '.join([*command, *shown])}\n  log {log}, last lines:\n{tail}"
            )
        return json.loads(output_file.read_text()) if output_file.exists() else {}

    def output(self, task: str, key: str) -> dict | None:
        names = self.state["done"].get(task, {}).get(key, [])
        return self.store.by_name(names[0]) if names else None

    def summary(self) -> list[str]:
        """What the run decided, from its artifacts' metadata."""
        blessing = self.output("Evaluator", "blessing")["metadata"]
        check = self.output("ServingValidator", "blessing")["metadata"]
        pushed = self.output("Pusher", "pushed_model")["metadata"]
        return [
            f"Baseline: {blessing.get('baseline_model_id') or 'none (no blessed model yet)'}",
            f"Blessing: {'BLESSED' if blessing.get('blessed') else 'NOT BLESSED'}",
            "Serving check: "
            + (f"FAILED - {check['problems']}" if check.get("problems") else "passed"),
            "Pushed model: "
            + (pushed["pushed_destination"] if pushed.get("pushed") else "none this run"),
        ]

    def run(self) -> None:
        tasks = self.spec["root"]["dag"]["tasks"]
        executors = self.spec["deploymentSpec"]["executors"]
        names = order(tasks)
        for index, name in enumerate(names, start=1):
            if name in self.state["done"]:
                print(f"[{index}/{len(names)}] {name} done in an earlier try", flush=True)
                continue
            print(f"[{index}/{len(names)}] {name} running...", flush=True)
            started = time.monotonic()
            component = self.spec["components"][tasks[name]["componentRef"]["name"]]
            executor = executors[component["executorLabel"]]
            log = self.root / "logs" / self.run_id / f"{name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            if "resolver" in executor:
                outputs = self.resolve(name, tasks[name], component, executor)
            else:
                outputs = self.execute(name, tasks[name], component, executor, log)
            self.state["done"][name] = outputs
            self.save()
            print(
                f"[{index}/{len(names)}] {name} done in {time.monotonic() - started:.1f} s",
                flush=True,
            )
        self.state["complete"] = True
        self.save()


def start_or_continue(root: Path, spec: dict, preloaded: bool = False) -> LocalRun:
    """A new run, or the last one where it failed."""
    store = ArtifactStore(root / "artifacts.json")
    runs = sorted((root / "runs").glob("*.json")) if (root / "runs").is_dir() else []
    if runs:
        state = json.loads(runs[-1].read_text())
        if not state["complete"]:
            print(f"Continuing run {runs[-1].stem} after its failed task")
            return LocalRun(spec, root, store, runs[-1].stem, state, preloaded)
    run_id = time.strftime("run-%Y%m%d-%H%M%S")
    return LocalRun(spec, root, store, run_id, {"done": {}, "complete": False}, preloaded)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--fresh-processes",
        action="store_true",
        help="start every step in a new interpreter, as its container would (slower)",
    )
    flags = parser.parse_args(argv)
    settings = Settings.from_env()
    root = settings.output_dir / "kubeflow-local"
    spec_path = compile_pipeline(settings, local_places(settings, root), root / "spec.json")
    spec = json.loads(spec_path.read_text())
    if not flags.fresh_processes:
        start_preloading(modules_to_preload(spec["pipelineSpec"]))
    if not settings.sample_root.exists():  # the spec reads TFRecords, as on a cluster
        write_sample(settings.sample_root, settings.sample_size, settings.data_seed)
    print(f"Compiled {spec_path}; executing its tasks here")
    run = start_or_continue(root, spec, preloaded=not flags.fresh_processes)
    started = time.monotonic()
    try:
        run.run()
    except TaskFailed as error:
        print(
            f"\nerror: {error}\nRun `make kubeflow-local` again to continue from this task.",
            file=sys.stderr,
        )
        return 1
    print(f"\nRun {run.run_id} finished in {time.monotonic() - started:.0f} s.")
    for line in run.summary():
        print(line)
    return 0


if __name__ == "__main__":
    run_cli(main)
