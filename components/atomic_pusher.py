"""TFX's Pusher, publishing a version in one step.

TFX's Pusher copies the model file by file into `<base>/<version>/` (saved_model.pb last): a
kill or a full disk during the copy left a numbered folder that TF Serving then tries to load,
empty or with part of saved_model.pb. Here TFX's own Pusher writes into `<base>/.pushing/`
(model servers watch numbered folders only), and the complete version is renamed into place;
what a failed push left there is removed at once, what a killed one left by the next."""

import os
import shutil
from typing import Any

from absl import logging
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

STAGING = ".pushing"


class AtomicPushExecutor(pusher_executor.Executor):
    def Do(self, input_dict: dict, output_dict: dict, exec_properties: dict[str, Any]) -> None:
        key = standard_component_specs.PUSH_DESTINATION_KEY
        destination = proto_utils.json_to_proto(exec_properties[key], pusher_pb2.PushDestination())
        base = destination.filesystem.base_directory
        staging = os.path.join(base, STAGING)
        if fileio.exists(staging):
            fileio.rmtree(staging)
        destination.filesystem.base_directory = staging
        staged = {**exec_properties, key: proto_utils.proto_to_json(destination)}
        try:
            super().Do(input_dict, output_dict, staged)
        except Exception:  # a full disk: give back what the partial copy took
            shutil.rmtree(staging, ignore_errors=True)
            raise
        pushed = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if pushed.get_int_custom_property("pushed"):
            version = pushed.get_string_custom_property("pushed_version")
            final = os.path.join(base, version)
            fileio.rename(os.path.join(staging, version), final)
            pushed.set_string_custom_property("pushed_destination", final)
            logging.info("Model version %s published at %s", version, final)
        if fileio.exists(staging):  # none where nothing was pushed
            fileio.rmtree(staging)


class Pusher(tfx.components.Pusher):
    """TFX's Pusher with AtomicPushExecutor: the same inputs, outputs, push destination and
    name (results and progress lines find it as "Pusher")."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPushExecutor)
