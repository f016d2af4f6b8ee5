"""Jira Cloud against a fake Jira on 127.0.0.1: the create request (ADF description, labels), label dedupe via
search/jql, Basic auth, and failures; plus the markdown → ADF conversion itself."""

from __future__ import annotations

import base64

import pytest

from tests.tickets.fakes import Answer, FakeJira, valid_adf
from tests.tickets.support import BODY, JIRA_API_TOKEN, JIRA_EMAIL, backlog_item
from tools.tickets.adf import markdown_to_adf
from tools.tickets.base import TicketSinkError, fingerprint_marker
from tools.tickets.jira import JiraIssueSink


def _sink(jira: FakeJira, **changes: object) -> JiraIssueSink:
    options: dict[str, object] = {"project_key": "FL", "timeout_seconds": 2.0}
    options.update(changes)
    return JiraIssueSink(jira.base_url, JIRA_EMAIL, JIRA_API_TOKEN, **options)  # type: ignore[arg-type]


def test_files_an_issue_with_labels_adf_and_basic_auth(jira: FakeJira) -> None:
    item = backlog_item(labels=("renewal", "sponsor reports"))
    ref = _sink(jira).file(item)

    assert (ref.sink, ref.key, ref.created) == ("jira", "FL-1000", True)
    assert ref.url == f"{jira.base_url}/browse/FL-1000"
    search, create = jira.requests
    assert (search.method, search.path) == ("POST", "/rest/api/3/search/jql")
    label = "fl-" + item.fingerprint[:16]
    assert search.json()["jql"] == f'labels = "{label}"'
    assert create.path == "/rest/api/3/issue"
    credentials = base64.b64encode(f"{JIRA_EMAIL}:{JIRA_API_TOKEN}".encode()).decode()
    assert create.headers["authorization"] == f"Basic {credentials}"
    fields = create.json()["fields"]
    assert fields["project"] == {"key": "FL"}
    assert fields["issuetype"] == {"name": "Task"}
    assert fields["summary"] == item.title
    assert fields["labels"] == ["feedbackloop", label, "renewal", "sponsor-reports"]
    assert valid_adf(fields["description"])
    assert fields["description"]["content"][0] == {
        "type": "heading",
        "attrs": {"level": 2},
        "content": [{"type": "text", "text": "Problem"}],
    }


def test_a_second_filing_finds_the_issue_by_label_and_creates_nothing(jira: FakeJira) -> None:
    sink = _sink(jira)
    first = sink.file(backlog_item())
    second = sink.file(backlog_item(title="Reworded"))
    other = sink.file(backlog_item(fingerprint="f" * 64))

    assert (second.key, second.url, second.created) == (first.key, first.url, False)
    assert (other.key, other.created) == ("FL-1001", True)
    assert len(jira.issues) == 2


def test_wrong_credentials_are_final_and_never_show_the_token(jira: FakeJira) -> None:
    wrong = "ATATTwrongTokenThatMustNotLeak99"
    with pytest.raises(TicketSinkError) as caught:
        JiraIssueSink(jira.base_url, JIRA_EMAIL, wrong, project_key="FL").file(backlog_item())
    error = caught.value
    assert (error.status_code, error.transient) == (401, False)
    assert str(error) == (
        "jira: searching Jira for label fl-"
        + backlog_item().fingerprint[:16]
        + " failed: HTTP 401: You are not authorized to perform this operation."
    )
    assert wrong not in repr(JiraIssueSink(jira.base_url, JIRA_EMAIL, wrong, project_key="FL"))


def test_refused_fields_are_final_and_name_the_field(jira: FakeJira) -> None:
    with pytest.raises(TicketSinkError) as caught:
        _sink(jira, issue_type="Epic Saga").file(backlog_item())
    assert (caught.value.status_code, caught.value.transient) == (400, False)
    assert str(caught.value).endswith("HTTP 400: issuetype: Specify a valid issue type")
    assert jira.issues == []


@pytest.mark.parametrize(
    ("answer", "transient"),
    [
        (Answer(500, {"errorMessages": ["Internal server error"]}), True),
        (Answer(503, "Service Unavailable"), True),
        (Answer(429, {"errorMessages": ["Rate limit exceeded"]}, {"retry-after": "3"}), True),
        (Answer(404, {"errorMessages": ["Project does not exist"]}), False),
    ],
)
def test_http_failures_are_classified(jira: FakeJira, answer: Answer, transient: bool) -> None:
    jira.script(answer)
    with pytest.raises(TicketSinkError) as caught:
        _sink(jira).file(backlog_item())
    assert (caught.value.status_code, caught.value.transient) == (answer.status, transient)
    assert JIRA_API_TOKEN not in str(caught.value)


def test_timeout_is_transient(jira: FakeJira) -> None:
    jira.script(Answer(200, {"issues": []}, delay_seconds=1.0))
    with pytest.raises(TicketSinkError, match="timed out") as caught:
        _sink(jira, timeout_seconds=0.2).file(backlog_item())
    assert caught.value.transient


def test_a_success_without_a_key_is_an_error(jira: FakeJira) -> None:
    jira.script(Answer(200, {"issues": []}), Answer(201, {"id": "1"}))
    with pytest.raises(TicketSinkError, match="answer has no issue key"):
        _sink(jira).file(backlog_item())


def test_markdown_becomes_valid_adf() -> None:
    document = markdown_to_adf(
        BODY + "\n```sql\nselect 1;\n```\n\n> quoted _note_\n\n---\n" + fingerprint_marker("ab")
    )
    assert valid_adf(document)
    kinds = [block["type"] for block in document["content"]]
    assert kinds == [
        "heading", "paragraph", "heading", "paragraph", "heading", "bulletList", "heading", "codeBlock",
        "paragraph", "codeBlock", "blockquote", "rule",
    ]  # fmt: skip
    paragraph = document["content"][1]["content"]
    assert {"type": "text", "text": "33%", "marks": [{"type": "strong"}]} in paragraph
    assert {"type": "text", "text": "podcast_network", "marks": [{"type": "code"}]} in paragraph
    table = document["content"][7]["content"][0]["text"]
    assert (
        table.splitlines()[0] == "| id | kind | metric | persona | value | baseline | change | p-value | n |"
    )
    assert document["content"][9]["attrs"] == {"language": "sql"}
    assert "feedbackloop:fingerprint" not in str(document)


def test_adf_inline_marks_and_empty_input() -> None:
    assert markdown_to_adf("") == {
        "version": 1,
        "type": "doc",
        "content": [{"type": "paragraph", "content": []}],
    }
    [paragraph] = markdown_to_adf("See [the dashboard](https://x.test/d) for renewal_success.")["content"]
    assert paragraph["content"] == [
        {"type": "text", "text": "See "},
        {
            "type": "text",
            "text": "the dashboard",
            "marks": [{"type": "link", "attrs": {"href": "https://x.test/d"}}],
        },
        {"type": "text", "text": " for renewal_success."},
    ]
    [numbered] = markdown_to_adf("1. first\n2. second")["content"]
    assert numbered["type"] == "orderedList" and len(numbered["content"]) == 2
