"""GitHub Issues against a fake GitHub on 127.0.0.1: the create request, marker dedupe across paginated
listings, and every failure as a TicketSinkError without the token."""

from __future__ import annotations

import httpx
import pytest

from tests.tickets.fakes import Answer, FakeGitHub
from tests.tickets.support import GITHUB_TOKEN, backlog_item, fingerprint
from tools.tickets.base import TicketSinkError, fingerprint_marker
from tools.tickets.github import GitHubIssueSink


def _sink(github: FakeGitHub, **changes: object) -> GitHubIssueSink:
    options: dict[str, object] = {"api_url": github.base_url, "labels": ("retro",), "timeout_seconds": 2.0}
    options.update(changes)
    return GitHubIssueSink(github.repository, GITHUB_TOKEN, **options)  # type: ignore[arg-type]


def test_files_an_issue_with_marker_labels_and_headers(github: FakeGitHub) -> None:
    item = backlog_item()
    ref = _sink(github).file(item)

    assert (ref.sink, ref.key, ref.created) == ("github", "1", True)
    assert ref.url == f"https://github.test/{github.repository}/issues/1"
    listing, create = github.requests
    assert (listing.method, listing.path) == ("GET", f"/repos/{github.repository}/issues")
    assert listing.query == {"state": "all", "labels": "feedbackloop", "per_page": "100"}
    assert (create.method, create.path) == ("POST", f"/repos/{github.repository}/issues")
    for request in (listing, create):
        assert request.headers["authorization"] == f"Bearer {GITHUB_TOKEN}"
        assert request.headers["accept"] == "application/vnd.github+json"
        assert request.headers["x-github-api-version"] == "2022-11-28"
    payload = create.json()
    assert payload["title"] == item.title
    assert payload["labels"] == ["feedbackloop", "retro", "renewal", "podcast_network"]
    assert payload["body"].startswith("## Problem\n\nSponsor reports per active podcaster fell **33%**")
    assert payload["body"].rstrip().endswith(fingerprint_marker(item.fingerprint))


def test_a_second_filing_finds_the_issue_and_creates_nothing(github: FakeGitHub) -> None:
    sink = _sink(github)
    first = sink.file(backlog_item())
    github.issues[0]["state"] = "closed"  # closed as won't-fix still counts
    second = sink.file(backlog_item(title="Reworded"))

    assert (second.key, second.url, second.created) == (first.key, first.url, False)
    assert len(github.issues) == 1
    assert [request.method for request in github.requests] == ["GET", "POST", "GET"]


def test_dedupe_follows_pagination_and_ignores_pull_requests(github: FakeGitHub) -> None:
    item = backlog_item()
    marker = fingerprint_marker(item.fingerprint)
    github.add_issue("the one filed long ago", f"old body\n{marker}", ("feedbackloop",))
    for index in range(230):  # newer issues push it to the third page
        github.add_issue(f"other {index}", fingerprint_marker(fingerprint(str(index))), ("feedbackloop",))
    github.add_issue("a pull request quoting it", marker, ("feedbackloop",), pull_request={"url": "x"})
    github.add_issue("unlabelled copy", marker)

    ref = _sink(github).file(item)

    assert (ref.key, ref.created) == ("1", False)
    pages = [request.query.get("page", "1") for request in github.requests]
    assert pages == ["1", "2", "3"]
    assert all(request.method == "GET" for request in github.requests)
    assert github.requests[2].query["labels"] == "feedbackloop"  # the next link kept the filter


def test_a_listing_longer_than_the_bound_refuses_rather_than_risk_a_duplicate(github: FakeGitHub) -> None:
    for index in range(250):
        github.add_issue(f"other {index}", "", ("feedbackloop",))
    with pytest.raises(TicketSinkError, match="more than 200 issues carry the feedbackloop label") as caught:
        _sink(github, max_listing_pages=2).file(backlog_item())
    assert caught.value.transient is False
    assert all(request.method == "GET" for request in github.requests)


def test_a_next_link_to_another_host_is_not_followed(github: FakeGitHub) -> None:
    github.script(Answer(200, [], {"link": '<https://evil.test/repos/x/issues?page=2>; rel="next"'}))
    with pytest.raises(TicketSinkError, match=r"next page is on another host \(evil.test\)"):
        _sink(github).file(backlog_item())
    assert len(github.requests) == 1


def test_bad_credentials_are_a_final_error_without_the_token(github: FakeGitHub) -> None:
    wrong = "ghp_wrongTokenThatMustNotLeak000000"
    with pytest.raises(TicketSinkError) as caught:
        GitHubIssueSink(github.repository, wrong, api_url=github.base_url).file(backlog_item())
    error = caught.value
    assert (error.sink, error.status_code, error.transient) == ("github", 401, False)
    assert "HTTP 401: Bad credentials" in str(error)
    assert wrong not in str(error) and "****" in str(error)  # the fake echoed the header; it was scrubbed
    assert wrong not in repr(GitHubIssueSink(github.repository, wrong))


def test_validation_failure_is_final_and_names_the_field(github: FakeGitHub) -> None:
    with pytest.raises(TicketSinkError) as caught:
        _sink(github).file(backlog_item(title="   "))
    assert (caught.value.status_code, caught.value.transient) == (422, False)
    assert str(caught.value) == (
        f"github: creating an issue in {github.repository} failed: HTTP 422: "
        "Validation Failed; Issue title missing_field"
    )


@pytest.mark.parametrize(
    ("answer", "transient"),
    [
        (Answer(500, {"message": "Server Error"}), True),
        (Answer(502, "<html>bad gateway</html>"), True),
        (Answer(429, {"message": "slow down"}, {"retry-after": "7"}), True),
        (Answer(403, {"message": "secondary rate limit"}, {"retry-after": "60"}), True),
        (Answer(403, {"message": "Resource not accessible by integration"}), False),
        (Answer(404, {"message": "Not Found"}), False),
    ],
)
def test_http_failures_are_classified(github: FakeGitHub, answer: Answer, transient: bool) -> None:
    github.script(answer)
    with pytest.raises(TicketSinkError) as caught:
        _sink(github).file(backlog_item())
    assert (caught.value.status_code, caught.value.transient) == (answer.status, transient)
    assert f"HTTP {answer.status}" in str(caught.value)
    if "retry-after" in answer.headers:
        assert caught.value.retry_after_seconds == float(answer.headers["retry-after"])
    assert GITHUB_TOKEN not in str(caught.value)
    assert github.issues == []


def test_a_failure_after_the_listing_creates_nothing_and_a_retry_files_once(github: FakeGitHub) -> None:
    github.script(Answer(200, []), Answer(500, {"message": "Server Error"}))
    with pytest.raises(TicketSinkError):
        _sink(github).file(backlog_item())
    ref = _sink(github).file(backlog_item())
    assert (ref.key, ref.created) == ("1", True)
    assert len(github.issues) == 1


def test_timeout_and_refused_connection_are_transient(github: FakeGitHub, unused_port: int) -> None:
    github.script(Answer(200, [], delay_seconds=1.0))
    with pytest.raises(TicketSinkError, match=r"timed out after 0\.2 s") as caught:
        _sink(github, timeout_seconds=0.2).file(backlog_item())
    assert caught.value.transient and caught.value.status_code is None

    refused = GitHubIssueSink("acme/app", GITHUB_TOKEN, api_url=f"http://127.0.0.1:{unused_port}")
    with pytest.raises(TicketSinkError, match="ConnectError") as caught:
        refused.file(backlog_item())
    assert caught.value.transient and GITHUB_TOKEN not in str(caught.value)


def test_a_repository_must_be_owner_slash_name() -> None:
    with pytest.raises(ValueError, match="'owner/name'"):
        GitHubIssueSink("just-a-name", GITHUB_TOKEN)


def test_an_injected_client_is_used_and_left_open(github: FakeGitHub) -> None:
    with httpx.Client(timeout=2.0) as client:
        sink = _sink(github, client=client)
        assert sink.file(backlog_item()).created
        assert not sink.file(backlog_item()).created
        assert not client.is_closed
    assert len(github.issues) == 1
