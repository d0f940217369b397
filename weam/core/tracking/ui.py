"""The MLflow UI: a chart view of an experiment's runs that a link opens."""

from __future__ import annotations

import json

from weam.core.tracking.tags import TAG_CONDITION


# The runs table's own attribute columns, kept when a view picks its metric columns (the UI shows
# only the columns a view selects): what each run read (datasets) and wrote (logged models).
RUN_TABLE_ATTRIBUTES = ("attributes.`Dataset`", "attributes.`Models`")


def chart_view(client, experiment_id: str, metric: str, group_tag: str = TAG_CONDITION,
               search_filter: str = "", extra_metrics: tuple[str, ...] = ()) -> str:
    """Store an MLflow UI view of the experiment's runs — grouped by ``group_tag``, charts of
    ``metric`` (then ``extra_metrics``) per group — and return its share key.

    MLflow 3's compare-runs page (``#/compare-runs``) takes only run and experiment ids, its plot
    axes cannot be set from a link; the experiment page's chart view can: the UI's *Share* button
    stores its state as the experiment tag ``mlflow.sharedViewState.<key>`` and opens it from
    ``?viewStateShareKey=<key>``. This writes that tag (plain JSON, which the UI also reads)."""
    import hashlib

    section = "weam"
    charts = [
        {"type": "BAR", "uuid": f"weam-bar-{i}", "metricKey": key, "metricSectionId": section, "isGenerated": False,
         "deleted": False, "runsCountToCompare": 100, "displayName": f"{key} by {group_tag}"}
        for i, key in enumerate((metric, *extra_metrics))
    ]
    state = {
        "searchFilter": search_filter,
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
        "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": group_tag}]},
        "useGroupedValuesInCharts": True,
        "hideEmptyCharts": True,
        "compareRunSections": [{"uuid": section, "name": f"{metric} by {group_tag}", "display": True,
                                "isReordered": False}],
        "compareRunCharts": charts,
        "isAccordionReordered": True,  # keep this section first (the UI sorts sections by name otherwise)
        "selectedColumns": [*RUN_TABLE_ATTRIBUTES, f"tags.`{group_tag}`", f"metrics.`{metric}`",
                            *(f"metrics.`{key}`" for key in extra_metrics)],
    }
    text = json.dumps(state, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    client.set_experiment_tag(experiment_id, f"mlflow.sharedViewState.{key}", text)
    return key


def chart_view_url(base_url: str, experiment_id: str, key: str, mode: str = "CHART") -> str:
    """The link that opens a view stored by :func:`chart_view`: its charts (``CHART``) or its runs
    table (``TABLE``: grouped rows, the group tag and metrics as columns)."""
    return (f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={key}"
            f"&compareRunsMode={mode}")
