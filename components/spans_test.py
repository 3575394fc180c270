"""Which Examples the Trainer gets: the latest spans that passed the validation gate."""

from components.spans import EXAMPLES_KEY, LatestValidatedSpansStrategy
from tests.lineage import FAILED, Lineage


def resolve(lineage: Lineage, examples: list, num_spans: int) -> list[tuple[int, int]]:
    resolved = LatestValidatedSpansStrategy(num_spans).resolve_artifacts(
        lineage.store, {EXAMPLES_KEY: examples}
    )
    return [(artifact.span, artifact.id) for artifact in resolved[EXAMPLES_KEY]]


def test_the_latest_spans_each_at_its_latest_version_oldest_first():
    lineage = Lineage()
    one, _ = lineage.ingest(span=1)
    two, _ = lineage.ingest(span=2)
    two_again, _ = lineage.ingest(span=2)  # the span's files changed: re-ingested
    three, _ = lineage.ingest(span=3)
    two_v0, _ = lineage.ingest(span=2, version=0)
    examples = [one, two, two_again, three, two_v0]
    assert resolve(lineage, examples, 2) == [(2, two_v0.id), (3, three.id)]
    assert resolve(lineage, examples, 5) == [(1, one.id), (2, two_v0.id), (3, three.id)]
    newer_version, _ = lineage.ingest(span=2, version=1)
    examples.append(newer_version)
    assert resolve(lineage, examples, 2) == [(2, newer_version.id), (3, three.id)]


def test_spans_the_gate_stopped_or_never_judged_are_left_out():
    lineage = Lineage()
    one, _ = lineage.ingest(span=1)
    drifted, _ = lineage.ingest(span=2, gate=FAILED)
    unjudged, _ = lineage.ingest(span=3, gate=None)  # a run that stopped before the gate
    four, _ = lineage.ingest(span=4)
    assert resolve(lineage, [one, drifted, unjudged, four], 3) == [(1, one.id), (4, four.id)]
    assert resolve(lineage, [], 3) == []
