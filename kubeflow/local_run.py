"""`make kubeflow-local`: compiles the KFP v2 spec as `make kubeflow` does, then executes that
JSON on this machine the way KFP v2's launcher would, to prove each task before a cluster does.

Tasks run in dependency order. A container task gets the ExecutorInput KFP would pass as `{{$}}`
(its parameters from the spec, input artifacts from earlier tasks, output artifacts under the
pipeline root) and runs its `command` and `args` with this project's `.venv` in place of the
image, its `lifecycle.preCacheCheck` driver first where it has one (ExampleGen's); the executor
output file it writes updates its artifacts. A resolver task evaluates its
`outputArtifactQueries` filter against every artifact earlier runs of the spec produced (held in
a JSON store beside them, standing in for Vertex ML Metadata) and yields the latest match. A
task with a `triggerPolicy` condition runs only when its CEL expression holds for its inputs,
and a task whose caching is on reuses the outputs of an earlier execution with the same cache
key (its inputs' artifact names, its parameters after its driver, its outputs and container),
as KFP v2's cache does.

Only the places differ from the cluster's: the pipeline root and serving base are under
outputs/kubeflow-local/, the data and schema are `make run`'s (DATA), and Beam runs in the task.
A failed run stops at the failing task, naming it, its command and its log's tail; the next run
reuses from the cache what the failed one finished, as a cluster's re-run does.

A `python -m <module>` step starts as a fork of one interpreter that has already imported the
spec's entry points and executor classes (pipeline/preloaded.py), then runs the module as
`__main__` with the step's arguments, as the container's Python would. Importing TFX costs 5-9 s
per task otherwise; `--fresh-processes` starts every step in a new interpreter instead.
"""

import argparse
import dataclasses
import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from components.data.atomic import write_atomically
from components.validation_gate import DataValidationError
from kubeflow.runner import compile_pipeline
from kubeflow.settings import KubeflowSettings
from pipeline import data_source, image_profile
from pipeline.local_runner import EXIT_CODES, run_cli
from pipeline.preloaded import run_module, start_preloading
from pipeline.settings import Settings

SCHEMA_TITLE = re.compile(r"^title: (\S+)$", re.MULTILINE)
PLACEHOLDER = re.compile(r"\{\{\$\.inputs\.artifacts\['([^']+)'\]\.metadata\['([^']+)'\]\}\}")
CLAUSE = re.compile(r"^(schema_title|state|name|metadata\.(\w+)\.(\w+))\s*=\s*(.+)$")
# The CEL that TFX compiles a tfx.dsl.Cond to: comparisons of input artifacts' metadata or URIs
# with constants, `!`, `&&`, `||` and parentheses.
CEL_TOKEN = re.compile(
    r"\s*(?:inputs\.artifacts\['(?P<key>[^']+)'\]\.artifacts\[(?P<index>\d+)\]"
    r"(?:\.metadata\['(?P<property>[^']+)'\]|(?P<uri>\.uri))"
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|'(?P<string>[^']*)'"
    r"|(?P<op>&&|\|\||==|!=|<|>|!|\(|\)))"
)


class TaskFailed(RuntimeError):
    """A spec task that failed; the message names it, its command and its log's tail.
    `refused_data`: it failed on data that failed validation (make run's exit 3)."""

    def __init__(self, message: str, refused_data: bool = False):
        super().__init__(message)
        self.refused_data = refused_data


def local_places(root: Path, source: data_source.DataSource) -> KubeflowSettings:
    """The Kubeflow settings of the environment with this machine's places."""
    return dataclasses.replace(
        KubeflowSettings.from_env(),
        kubeflow_pipeline_root=str(root / "pipeline_root"),
        kubeflow_data_root=str(source.root),
        kubeflow_serving_base=str(root / "serving_model"),
        schema=str(source.schema or ""),
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
        write_atomically(self.path, json.dumps(self.artifacts, indent=1))

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


class Condition:
    """A task's `triggerPolicy` condition, evaluated against its input artifacts' records,
    left to right with CEL's short-circuit `&&` and `||` (a side not needed is not evaluated,
    so its errors do not count)."""

    def __init__(self, expression: str, inputs: dict[str, list[dict]]):
        self.expression, self.inputs = expression, inputs
        self.tokens = list(CEL_TOKEN.finditer(expression))
        if sum(len(t[0]) for t in self.tokens) != len(expression):
            raise ValueError(f"Unsupported condition: {expression!r}")
        self.position = 0

    def holds(self) -> bool:
        value = self._or(evaluate=True)
        if self.position != len(self.tokens):
            raise ValueError(f"Unsupported condition: {self.expression!r}")
        return bool(value)

    def _peek(self) -> str | None:
        return self.tokens[self.position]["op"] if self.position < len(self.tokens) else None

    def _take(self) -> re.Match:
        self.position += 1
        return self.tokens[self.position - 1]

    # Each step parses its part of the expression and, with `evaluate`, its value.
    def _or(self, evaluate: bool) -> object:
        value = self._and(evaluate)
        while self._peek() == "||":
            self._take()
            right = self._and(evaluate and not value)
            value = value or right
        return value

    def _and(self, evaluate: bool) -> object:
        value = self._comparison(evaluate)
        while self._peek() == "&&":
            self._take()
            right = self._comparison(evaluate and bool(value))
            value = value and right
        return value

    def _comparison(self, evaluate: bool) -> object:
        left = self._unary(evaluate)
        if self._peek() not in ("==", "!=", "<", ">"):
            return left
        op, right = self._take()["op"], self._unary(evaluate)
        if not evaluate:
            return None
        if op in "<>" and type(left) is not type(right):
            raise ValueError(f"Condition {self.expression!r} compares {left!r} with {right!r}")
        return {"==": left == right, "!=": left != right, "<": left < right, ">": left > right}[op]

    def _unary(self, evaluate: bool) -> object:
        if self._peek() == "!":
            self._take()
            return not self._unary(evaluate)
        return self._primary(evaluate)

    def _primary(self, evaluate: bool) -> object:
        token = self._take()
        if token["op"] == "(":
            value = self._or(evaluate)
            if self._take()["op"] != ")":
                raise ValueError(f"Unbalanced condition: {self.expression!r}")
            return value
        if token["number"] is not None:
            return float(token["number"])
        if token["string"] is not None:
            return token["string"]
        if token["key"] is not None:
            if not evaluate:
                return None
            records = self.inputs.get(token["key"], [])
            index = int(token["index"])
            if index >= len(records):
                raise ValueError(f"Condition {self.expression!r}: no artifact {token[0].strip()}")
            record = records[index]
            if token["uri"]:
                return record["uri"]
            value = record["metadata"].get(token["property"])
            if value is None:
                raise ValueError(f"Condition {self.expression!r}: no metadata {token[0].strip()}")
            return float(value) if isinstance(value, (int, float)) else value
        raise ValueError(f"Unsupported condition: {self.expression!r}")


class TaskCache:
    """KFP v2's execution cache: a task's outputs by its cache key, in a JSON file."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, dict] = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def put(self, key: str, outputs: dict) -> None:
        self.entries[key] = outputs
        write_atomically(self.path, json.dumps(self.entries, indent=1))


def cache_key(
    inputs: dict[str, list[dict]], parameters: dict, component: dict, container: dict
) -> str:
    """What KFP v2 fingerprints: input artifact names, parameter values, output definitions and
    the container's image, command and arguments."""
    document = {
        "inputArtifactNames": {key: [a["name"] for a in found] for key, found in inputs.items()},
        "inputParameterValues": parameters,
        "outputArtifactsSpec": component.get("outputDefinitions", {}),
        "containerSpec": {
            "image": container.get("image"),
            "cmdArgs": [*container["command"], *container.get("args", [])],
        },
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def build_executor_input(
    component: dict, inputs: dict, parameters: dict, outputs: dict, task_root: Path
) -> dict:
    """KFP's ExecutorInput for a task: its parameters, its input artifacts as runtime
    artifacts, and where its outputs and executor output go."""
    definitions = component.get("inputDefinitions", {}).get("artifacts", {})
    return {
        "inputs": {
            "parameters": parameters,
            "artifacts": {
                key: {
                    "artifacts": [
                        runtime_artifact(a, definitions[key]["artifactType"]) for a in records
                    ]
                }
                for key, records in inputs.items()
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


class LocalRun:
    """One execution of the spec; what each task did and read is kept in a file."""

    def __init__(
        self,
        spec: dict,
        root: Path,
        store: ArtifactStore,
        run_id: str,
        preloaded: bool = False,  # python -m steps fork the preloaded interpreter
    ):
        self.spec = spec["pipelineSpec"]
        self.preloaded = preloaded
        self.root = root
        self.store = store
        self.cache = TaskCache(root / "cache.json")
        self.run_id = run_id
        # {task: {"state": COMPLETE | CACHED | SKIPPED, "inputs": {key: [artifact names]},
        #  "outputs": {key: [artifact names]}}}; "complete" once every task is done.
        self.state: dict = {"tasks": {}, "complete": False}
        self.state_path = root / "runs" / f"{run_id}.json"

    def save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.state_path, json.dumps(self.state, indent=1))

    def inputs_of(self, task: dict) -> dict:
        """{input name: [artifact records]} from the producing tasks' outputs."""
        found = {}
        for name, source in task.get("inputs", {}).get("artifacts", {}).items():
            producer = source["taskOutputArtifact"]
            done = self.state["tasks"][producer["producerTask"]]
            names = done["outputs"].get(producer["outputArtifactKey"], [])
            if names:
                found[name] = [self.store.by_name(n) for n in names]
        return found

    def resolve(self, executor: dict, inputs: dict) -> dict:
        outputs = {}
        for key, query in executor["resolver"]["outputArtifactQueries"].items():

            def fill(match: re.Match) -> str:
                records = inputs.get(match[1], [])
                return str(records[0]["metadata"].get(match[2], "")) if records else ""

            outputs[key] = [
                a["name"] for a in self.store.query(PLACEHOLDER.sub(fill, query["filter"]))
            ]
        return outputs

    def execute(
        self, name: str, task: dict, component: dict, executor: dict, inputs: dict, log: Path
    ) -> tuple[dict, str]:
        """Runs a container task, or reuses a cached execution's outputs: (outputs, state)."""
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
        executor_input = build_executor_input(component, inputs, parameters, outputs, task_root)
        task_root.mkdir(parents=True, exist_ok=True)
        (task_root / "executor_output.json").unlink(missing_ok=True)
        container = executor["container"]
        if "lifecycle" in container:  # a driver, whose updated parameters the executor gets
            driver = container["lifecycle"]["preCacheCheck"]
            updates = self.launch(name, driver, executor_input, log)
            for key, value in updates.get("parameterValues", {}).items():
                parameters[key] = legacy_value(value)
        key = cache_key(inputs, parameters, component, container)
        cached = self.cache.get(key) if task.get("cachingOptions", {}).get("enableCache") else None
        if cached is not None:
            return cached, "CACHED"
        written = self.launch(name, container, executor_input, log)
        for output_key, (record, _) in outputs.items():
            for artifact in written.get("artifacts", {}).get(output_key, {}).get("artifacts", []):
                record["metadata"].update(artifact.get("metadata", {}))
                record["uri"] = artifact.get("uri", record["uri"])
            record.update({"run": self.run_id, "task": name, "key": output_key, "state": "LIVE"})
            self.store.add(record)
        names = {output_key: [record["name"]] for output_key, (record, _) in outputs.items()}
        self.cache.put(key, names)
        return names, "COMPLETE"

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
            text = log.read_text()
            tail = "\n".join(text.splitlines()[-25:])
            raise TaskFailed(
                f"task {name} failed (exit {exit_code})\n  command: "
                f"{' '.join([*command, *shown])}\n  log {log}, last lines:\n{tail}",
                refused_data=DataValidationError.__name__ in text,
            )
        return json.loads(output_file.read_text()) if output_file.exists() else {}

    def output(self, task: str, key: str) -> dict | None:
        names = self.state["tasks"].get(task, {}).get("outputs", {}).get(key, [])
        return self.store.by_name(names[0]) if names else None

    def summary(self) -> list[str]:
        """What the run decided, from its artifacts' metadata."""
        if self.state["tasks"]["Evaluator"]["state"] == "SKIPPED":
            return [
                "Candidate: the Trainer's model is the last blessed one and was pushed (nothing "
                "changed): nothing to evaluate, check or push",
                "Pushed model: none this run",
            ]
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

    def skips(self, task: dict, inputs: dict) -> bool:
        """Whether KFP would skip the task: a task it depends on or reads from was skipped, or
        its trigger condition does not hold."""
        upstream = set(task.get("dependentTasks", [])) | {
            source["taskOutputArtifact"]["producerTask"]
            for source in task.get("inputs", {}).get("artifacts", {}).values()
        }
        if any(self.state["tasks"][u]["state"] == "SKIPPED" for u in upstream):
            return True
        condition = task.get("triggerPolicy", {}).get("condition")
        return bool(condition) and not Condition(condition, inputs).holds()

    def run(self) -> None:
        tasks = self.spec["root"]["dag"]["tasks"]
        executors = self.spec["deploymentSpec"]["executors"]
        names = order(tasks)
        for index, name in enumerate(names, start=1):
            task = tasks[name]
            inputs = self.inputs_of(task)
            if self.skips(task, inputs):
                self.state["tasks"][name] = {"state": "SKIPPED", "inputs": {}, "outputs": {}}
                self.save()
                print(f"[{index}/{len(names)}] {name} skipped (its condition is false)")
                continue
            print(f"[{index}/{len(names)}] {name} running...", flush=True)
            started = time.monotonic()
            component = self.spec["components"][task["componentRef"]["name"]]
            executor = executors[component["executorLabel"]]
            log = self.root / "logs" / self.run_id / f"{name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            if "resolver" in executor:
                outputs, state = self.resolve(executor, inputs), "COMPLETE"
            else:
                outputs, state = self.execute(name, task, component, executor, inputs, log)
            read = {key: [a["name"] for a in records] for key, records in inputs.items()}
            self.state["tasks"][name] = {"state": state, "inputs": read, "outputs": outputs}
            self.save()
            how = "reused from cache" if state == "CACHED" else "done"
            elapsed = time.monotonic() - started
            print(f"[{index}/{len(names)}] {name} {how} in {elapsed:.1f} s", flush=True)
        self.state["complete"] = True
        self.save()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--fresh-processes",
        action="store_true",
        help="start every step in a new interpreter, as its container would (slower)",
    )
    flags = parser.parse_args(argv)
    settings = Settings.from_env()
    source = data_source.resolve(settings)  # the data make run reads
    root = settings.output_dir / "kubeflow-local"
    decision = image_profile.decide(source, settings)  # as make run decides
    image_profile.check_backbone(settings, decision)
    print(decision.describe())
    spec_path = compile_pipeline(
        settings, local_places(root, source), root / "spec.json", source, decision.profile
    )
    spec = json.loads(spec_path.read_text())
    if not flags.fresh_processes:
        start_preloading(modules_to_preload(spec["pipelineSpec"]))
    print(f"Compiled {spec_path}; executing its tasks here")
    run_id = time.strftime("run-%Y%m%d-%H%M%S")
    store = ArtifactStore(root / "artifacts.json")
    run = LocalRun(spec, root, store, run_id, preloaded=not flags.fresh_processes)
    started = time.monotonic()
    try:
        run.run()
    except TaskFailed as error:
        print(
            f"\nerror: {error}\nA new `make kubeflow-local` reuses from the cache what this run "
            "finished, as a cluster's re-run does.",
            file=sys.stderr,
        )
        return EXIT_CODES[DataValidationError] if error.refused_data else 1
    print(f"\nRun {run.run_id} finished in {time.monotonic() - started:.0f} s.")
    for line in run.summary():
        print(line)
    return 0


if __name__ == "__main__":
    run_cli(main)
