"""ExampleGen executors that record the span and version they read as the Examples artifact's
typed properties.

TFX 1.16's ExampleGen driver records them as custom properties only, while StatisticsGen (which
copies `examples.span` onto its statistics) and the input-resolution ops behind TFX's
`rolling_range` read the typed ones: without this every span reads 0, a rolling range shrinks
to the newest artifact and statistics cannot tell one span from the next.
"""

from typing import Any

from tfx import types
from tfx.components.example_gen import utils
from tfx.components.example_gen.import_example_gen.executor import (
    Executor as ImportExecutor,
)
from tfx.types import standard_component_specs


def record_span_and_version(examples: list[types.Artifact], exec_properties: dict) -> None:
    for artifact in examples:
        artifact.span = exec_properties[utils.SPAN_PROPERTY_NAME]
        if exec_properties.get(utils.VERSION_PROPERTY_NAME) is not None:
            artifact.version = exec_properties[utils.VERSION_PROPERTY_NAME]


class SpanRecordingExecutor:
    """Mixin for an ExampleGen executor class: records span and version after writing."""

    def Do(  # noqa: N802 (TFX's name)
        self, input_dict: dict, output_dict: dict[str, list[types.Artifact]], exec_properties: dict
    ) -> Any:
        result = super().Do(input_dict, output_dict, exec_properties)
        record_span_and_version(output_dict[standard_component_specs.EXAMPLES_KEY], exec_properties)
        return result


class ImportExampleGenExecutor(SpanRecordingExecutor, ImportExecutor):
    """TFX's ImportExampleGen executor (TFRecords of tf.Examples), recording spans."""
