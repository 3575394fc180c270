"""Sends the compiled pipeline spec to Kubeflow Pipelines or Vertex AI Pipelines.

    python -m kubeflow.submit kfp --endpoint https://<kfp-host> [--param epochs=30]
    python -m kubeflow.submit vertex [--schedule "0 3 * * *"]

It fails at once, before any network call, when the endpoint or credentials are missing.
"""

import argparse
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from kubeflow.settings import KubeflowSettings
from pipeline.settings import Settings

ADC_FILE = Path("~/.config/gcloud/application_default_credentials.json")


class SubmitError(Exception):
    """A submission that cannot start; the message says what to set."""


def require_google_credentials(use_metadata_server: bool) -> None:
    """Vertex AI needs Application Default Credentials; look for them without network calls."""
    if use_metadata_server or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return
    if not ADC_FILE.expanduser().is_file():
        raise SubmitError(
            "No Google Cloud credentials: run `gcloud auth application-default login`, or set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (on GCE or Vertex AI "
            "Workbench, pass --metadata_credentials)."
        )


def require_reachable(endpoint: str, timeout_s: float = 5.0) -> None:
    """One quick request, instead of kfp.Client's minutes of retries against a dead host."""
    try:
        urllib.request.urlopen(f"{endpoint.rstrip('/')}/apis/v2beta1/healthz", timeout=timeout_s)
    except urllib.error.HTTPError:
        return  # it answered (an auth proxy may refuse the health check itself)
    except (urllib.error.URLError, OSError) as error:
        raise SubmitError(f"Kubeflow Pipelines at {endpoint} did not answer: {error}") from error


def submit_to_kfp(
    spec: Path, endpoint: str, parameters: dict, schedule: str | None, name: str
) -> str:
    """Creates a run (or a recurring run) on a Kubeflow Pipelines v2 endpoint."""
    if not endpoint:
        raise SubmitError("No Kubeflow Pipelines endpoint: pass --endpoint or set KFP_ENDPOINT.")
    require_reachable(endpoint)
    import kfp

    client = kfp.Client(host=endpoint)
    if schedule:
        experiment = client.create_experiment(name)
        job = client.create_recurring_run(
            experiment_id=experiment.experiment_id,
            job_name=name,
            pipeline_package_path=str(spec),
            params=parameters,
            cron_expression=schedule,
        )
        return f"recurring run {job.recurring_run_id}"
    run = client.create_run_from_pipeline_package(str(spec), arguments=parameters)
    return f"run {run.run_id}"


def submit_to_vertex(
    spec: Path,
    parameters: dict,
    schedule: str | None,
    use_metadata_server: bool,
    name: str,
    cloud: KubeflowSettings,
) -> str:
    """Starts a Vertex AI PipelineJob (or a schedule of them) in the configured project."""
    require_google_credentials(use_metadata_server)
    from google.cloud import aiplatform

    aiplatform.init(project=cloud.project, location=cloud.region)
    job = aiplatform.PipelineJob(
        display_name=name,
        template_path=str(spec),
        pipeline_root=cloud.pipeline_root,
        parameter_values=parameters,
    )
    if schedule:
        return f"schedule {job.create_schedule(cron=schedule, display_name=name)}"
    job.submit()
    return f"pipeline job {job.resource_name}"


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", choices=["kfp", "vertex"])
    parser.add_argument("--spec", type=Path, default=settings.kubeflow_spec_path)
    parser.add_argument("--endpoint", default=os.environ.get("KFP_ENDPOINT", ""))
    parser.add_argument("--param", action="append", default=[], help="NAME=VALUE, repeatable")
    parser.add_argument("--schedule", help="cron expression for a recurring run")
    parser.add_argument("--metadata_credentials", action="store_true")
    args = parser.parse_args(argv)
    try:
        if not args.spec.is_file():
            raise SubmitError(f"No pipeline spec at {args.spec}: run `make kubeflow` first.")
        parameters = dict(item.split("=", 1) for item in args.param)
        if args.target == "kfp":
            submitted = submit_to_kfp(
                args.spec, args.endpoint, parameters, args.schedule, settings.pipeline_name
            )
        else:
            submitted = submit_to_vertex(
                args.spec,
                parameters,
                args.schedule,
                args.metadata_credentials,
                settings.pipeline_name,
                KubeflowSettings.from_env(),
            )
    except SubmitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Submitted {submitted}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
