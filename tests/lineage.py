"""A real ML Metadata store (in-memory SQLite) with the lineage that the pipeline's resolver
strategies read: ExampleGen -> Examples -> StatisticsGen -> statistics -> ValidationGate."""

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.types.standard_artifacts import Examples, ExampleStatistics

COMPLETE, FAILED = metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.FAILED


class Lineage:
    def __init__(self):
        config = metadata_store_pb2.ConnectionConfig()
        config.fake_database.SetInParent()
        self.store = metadata_store.MetadataStore(config)

    def _type_id(self, name: str) -> int:
        return self.store.put_execution_type(metadata_store_pb2.ExecutionType(name=name))

    def _artifact(self, artifact_class, span: int, version: int = 0):
        type_id = self.store.put_artifact_type(artifact_class._get_artifact_type())  # noqa: SLF001
        (artifact_id,) = self.store.put_artifacts([metadata_store_pb2.Artifact(type_id=type_id)])
        artifact = artifact_class()
        artifact.id, artifact.span = artifact_id, span
        if "version" in artifact_class.PROPERTIES:
            artifact.version = version
        artifact.mlmd_artifact.type_id = type_id
        return artifact

    def _execution(self, name: str, state, inputs: dict, outputs: dict) -> None:
        execution = metadata_store_pb2.Execution(
            type_id=self._type_id(name), last_known_state=state
        )
        events = []
        for kind, artifacts in (
            (metadata_store_pb2.Event.INPUT, inputs),
            (metadata_store_pb2.Event.OUTPUT, outputs),
        ):
            for key, artifact in artifacts.items():
                event = metadata_store_pb2.Event(type=kind)
                event.path.steps.add().key = key
                events.append((artifact.mlmd_artifact, event))
        self.store.put_execution(execution, events, contexts=[])

    def ingest(self, span: int, version: int = 0, gate=COMPLETE):
        """Examples of `span` and their statistics, judged by a gate that ended in `gate`
        (None: no gate ran). Returns (examples, statistics)."""
        examples = self._artifact(Examples, span, version)
        statistics = self._artifact(ExampleStatistics, span)
        self._execution(
            "tfx.components.statistics_gen.component.StatisticsGen",
            COMPLETE,
            {"examples": examples},
            {"statistics": statistics},
        )
        if gate is not None:
            gate_inputs = {"statistics": statistics}
            self._execution("components.validation_gate.ValidationGate", gate, gate_inputs, {})
        return examples, statistics
