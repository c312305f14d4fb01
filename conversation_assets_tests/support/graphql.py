"""A small client for the Dagster webserver's GraphQL API: the operations the UI performs.

Each method is one request and asserts that the answer is the success type; waiting (for a
backfill, for runs) is the deployment's job (:mod:`.dagster_deployment`), which can also watch
the processes while it polls.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

#: The project's asset, job and code location as the webserver names them.
ASSET_PATH = ["dixa", "conversation_export"]
JOB_NAME = "dixa_conversation_export_job"
LOCATION_NAME = "conversation_assets"
REPOSITORY_NAME = "__repository__"  # the repository Dagster makes of a Definitions object

#: Final states of a backfill (``status``) and of a run.
BACKFILL_SUCCEEDED = {"COMPLETED", "COMPLETED_SUCCESS"}
BACKFILL_FAILED = {"FAILED", "COMPLETED_FAILED", "CANCELED"}
RUN_FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

LOCATIONS = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""

SET_POOL_LIMIT = """
mutation($pool: String!, $limit: Int!) {
  setConcurrencyLimit(concurrencyKey: $pool, limit: $limit)
}
"""

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""

BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status error { message } }
    ... on Error { message }
  }
}
"""

BACKFILL_COUNTS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      assetBackfillData {
        assetBackfillStatuses {
          ... on AssetPartitionsStatusCounts {
            numPartitionsTargeted
            numPartitionsMaterialized
            numPartitionsFailed
          }
        }
      }
    }
  }
}
"""

LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
  }
}
"""

RUNS = """
query($filter: RunsFilter!) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status creationTime startTime endTime tags { key value } } }
    ... on Error { message }
  }
}
"""

RUN_EVENTS = """
query($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message level }
        ... on ErrorEvent {
          error { message causes { message } errorChain { error { message } } }
        }
      }
    }
    ... on Error { message }
  }
}
"""

MATERIALIZATIONS = """
query($path: [String!]!, $partitions: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset {
      assetMaterializations(partitions: $partitions) {
        partition
        runId
        metadataEntries {
          label
          ... on TextMetadataEntry { text }
          ... on IntMetadataEntry { intRepr }
        }
      }
    }
  }
}
"""

Run = dict[str, Any]


class DagsterGraphQL:
    """POSTs queries to ``<webserver_url>/graphql`` and unwraps the answers."""

    def __init__(self, webserver_url: str) -> None:
        self.url = f"{webserver_url}/graphql"

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of the answer to ``query``; fails on ``errors``."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        assert not answer.get("errors"), f"GraphQL errors: {answer['errors']}"
        return answer["data"]

    def location_loaded(self, name: str = LOCATION_NAME) -> bool | None:
        """True once code location ``name`` has loaded, None before; fails on a load error."""
        workspace = self.execute(LOCATIONS)["workspaceOrError"]
        entries = {entry["name"]: entry for entry in workspace.get("locationEntries", [])}
        entry = entries.get(name)
        if entry is None or entry["loadStatus"] != "LOADED":
            return None
        location = entry["locationOrLoadError"]
        assert location["__typename"] == "RepositoryLocation", f"{name} failed to load: {location}"
        return True

    def set_pool_limit(self, pool: str, limit: int) -> None:
        """The UI's Deployment > Concurrency > pool limit."""
        result = self.execute(SET_POOL_LIMIT, {"pool": pool, "limit": limit})
        assert result["setConcurrencyLimit"] is True, result

    def launch_backfill(self, partitions: list[str], asset_path: list[str] = ASSET_PATH) -> str:
        """Backfill the asset for ``partitions`` (the UI's "Materialize selected"); its id."""
        params = {"partitionNames": partitions, "assetSelection": [{"path": asset_path}]}
        result = self.execute(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        return result["backfillId"]

    def backfill(self, backfill_id: str) -> dict[str, Any]:
        """The backfill's ``status`` (and ``error``)."""
        backfill = self.execute(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        return backfill

    def backfill_counts(self, backfill_id: str) -> list[dict[str, int]]:
        """Partitions targeted, materialized and failed, one entry per asset of the backfill."""
        backfill = self.execute(BACKFILL_COUNTS, {"id": backfill_id})["partitionBackfillOrError"]
        return backfill["assetBackfillData"]["assetBackfillStatuses"]

    def launch_job_run(self, partition: str, job: str = JOB_NAME) -> str:
        """Launch the job for one partition (the launchpad's "Launch run"); the run's id."""
        params = {
            "selector": {
                "repositoryLocationName": LOCATION_NAME,
                "repositoryName": REPOSITORY_NAME,
                "jobName": job,
            },
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        }
        result = self.execute(LAUNCH_RUN, {"params": params})["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def runs(self, run_filter: dict[str, Any] | None = None) -> list[Run]:
        """Runs matching a ``RunsFilter``, each with a ``partition`` taken from its tags."""
        runs = self.execute(RUNS, {"filter": run_filter or {}})["runsOrError"]
        assert runs["__typename"] == "Runs", runs
        for run in runs["results"]:
            run["partition"] = run_partition(tags_of(run))
        return runs["results"]

    def run_events(self, run_id: str) -> list[dict[str, Any]]:
        """Every event of a run's event log (the UI's run log), page by page."""
        events: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.execute(RUN_EVENTS, {"runId": run_id, "cursor": cursor})["logsForRun"]
            assert page["__typename"] == "EventConnection", page
            events += page["events"]
            if not page["hasMore"]:
                return events
            cursor = page["cursor"]

    def partition_metadata(
        self, partitions: list[str], asset_path: list[str] = ASSET_PATH
    ) -> dict[str, dict[str, str]]:
        """Metadata of the newest materialization of each partition, as label -> text."""
        data = self.execute(MATERIALIZATIONS, {"path": asset_path, "partitions": partitions})
        asset = data["assetOrError"]
        assert asset["__typename"] == "Asset", asset
        newest: dict[str, dict[str, str]] = {}
        for event in asset["assetMaterializations"]:  # newest first
            entries = {
                entry["label"]: entry.get("text", entry.get("intRepr"))
                for entry in event["metadataEntries"]
            }
            newest.setdefault(event["partition"], entries)
        return newest


def tags_of(run: Run) -> dict[str, str]:
    """A run's tags as a dict."""
    return {tag["key"]: tag["value"] for tag in run["tags"]}


def run_partition(tags: dict[str, str]) -> str | None:
    """The one partition a run targets: a job run's partition tag, or a backfill run's range."""
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start = tags.get("dagster/asset_partition_range_start")
    end = tags.get("dagster/asset_partition_range_end")
    return start if start == end else f"{start}...{end}"


def error_texts(events: list[dict[str, Any]]) -> list[str]:
    """The messages of error events and of their errors (causes and chained errors too)."""
    texts = []
    for event in events:
        if event.get("level") in ("ERROR", "CRITICAL"):
            texts.append(event["message"])
        error = event.get("error")
        if error:
            texts.append(error["message"])
            texts += [cause["message"] for cause in error["causes"]]
            texts += [link["error"]["message"] for link in error["errorChain"]]
    return texts


def overlapping(run: Run, others: list[Run], start: str) -> list[str]:
    """Ids of ``others`` whose ``[start, endTime]`` overlaps ``run``'s (``start``: a time field)."""
    return [
        other["runId"]
        for other in others
        if other[start] < run["endTime"] and run[start] < other["endTime"]
    ]
