"""Which statistics the drift check compares with."""

from tfx.types.standard_artifacts import ExampleStatistics

from components.validation_gate import CURRENT_KEY, STATISTICS_KEY, PreviousStatisticsStrategy


def statistics(artifact_id: int, span: int) -> ExampleStatistics:
    artifact = ExampleStatistics()
    artifact.id, artifact.span = artifact_id, span
    return artifact


def previous(all_ids_spans: list[tuple[int, int]], current: tuple[int, int]) -> list[int]:
    resolved = PreviousStatisticsStrategy().resolve_artifacts(
        None,
        {
            STATISTICS_KEY: [statistics(*pair) for pair in all_ids_spans],
            CURRENT_KEY: [statistics(*current)],
        },
    )
    return [artifact.id for artifact in resolved[STATISTICS_KEY]]


def test_a_new_span_is_compared_with_the_latest_statistics_of_the_span_before():
    # span 1 ingested twice (ids 1, 2), span 2 (id 3), span 2 again with new files (id 4)
    assert previous([(1, 1), (2, 1), (3, 2)], current=(3, 2)) == [2]
    assert previous([(1, 1), (2, 1), (3, 2), (4, 2)], current=(4, 2)) == [2]


def test_without_spans_the_previous_run_is_the_reference_and_a_first_run_has_none():
    assert previous([(1, 0), (2, 0), (3, 0)], current=(3, 0)) == [2]
    assert previous([(5, 0)], current=(5, 0)) == []
    assert previous([(5, 1)], current=(5, 1)) == []
