"""CI filters on Git payloads: globs, branch/tag/path rules, [skip ci], concurrency groups."""

from __future__ import annotations

from typing import Any

import pytest

from sensors import gitfilters
from sensors.filterspec import GitFilter
from tests.sensors.eventkit import fixture_json, webhook


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("main", "main", True),
        ("main", "main2", False),
        ("release/*", "release/1.0", True),
        ("release/*", "release/1.0/hotfix", False),
        ("release/**", "release/1.0/hotfix", True),
        ("**/*.py", "setup.py", True),
        ("**/*.py", "src/app/x.py", True),
        ("src/**", "src/app/x.py", True),
        ("*.md", "docs/a.md", False),
        ("v?.?", "v1.2", True),
        ("v?.?", "v1/2", False),
        ("v[12].*", "v2.0", True),
        ("v[!12].*", "v3.0", True),
        ("a+b", "a+b", True),
        ("a.b", "axb", False),
    ],
    ids=lambda v: None,
)
def test_glob(pattern: str, text: str, expected: bool) -> None:
    """* stays in a segment, ** crosses them, ? is one character, regex metacharacters are literal."""
    assert expected == gitfilters.glob_match(pattern, text)


@pytest.mark.parametrize(
    ("patterns", "text", "expected"),
    [
        (["release/**", "!release/old-*"], "release/old-1", False),
        (["release/**", "!release/old-*"], "release/new", True),
        (["!main", "**"], "main", True),
        (["!main"], "dev", False),
    ],
    ids=["excluded", "included", "last-match-wins", "only-negative"],
)
def test_negation_last_match_wins(patterns: list[str], text: str, expected: bool) -> None:
    """Patterns apply in order, a later ! excludes and a later include re-includes."""
    assert expected == gitfilters.matches(patterns, text)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "github-push.json",
            gitfilters.GitFacts(
                ref="refs/heads/main",
                branch="main",
                sha="a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
                repo="acme/widgets",
                head_message='Fix "parser"\n\nKeeps {{ braces }} and $(subshells) literal',
                changed_paths=("docs/intro.md", "src/app/parser.py", "src/app/old.py"),
            ),
        ),
        (
            "gitlab-push.json",
            gitfilters.GitFacts(
                ref="refs/heads/release/2.0",
                branch="release/2.0",
                sha="b" * 40,
                repo="group/service",
                head_message="Bump version [ci skip]\n",
                changed_paths=("pyproject.toml", "README.md"),
            ),
        ),
        (
            "gitea-tag-push.json",
            gitfilters.GitFacts(
                ref="refs/tags/v1.4.0",
                tag="v1.4.0",
                sha="d" * 40,
                repo="org/lib",
                head_message="Release 1.4.0",
            ),
        ),
        (
            "bitbucket-push.json",
            gitfilters.GitFacts(
                ref="refs/heads/feature/x",
                branch="feature/x",
                sha="f" * 40,
                repo="team/app",
                head_message="Work on x\n",
            ),
        ),
        (
            "github-pull-request.json",
            gitfilters.GitFacts(
                ref="refs/heads/main", branch="main", sha="9" * 40, repo="acme/widgets", pr="42"
            ),
        ),
    ],
    ids=["github-push", "gitlab-push", "gitea-tag", "bitbucket-push", "github-pr"],
)
def test_facts_per_host(fixture: str, expected: gitfilters.GitFacts) -> None:
    """Each host's payload shape yields the same normalised facts."""
    assert expected == gitfilters.facts(webhook(fixture_json(fixture)))


def test_non_git_payload_has_no_facts() -> None:
    """A plain webhook body is not a Git event."""
    assert gitfilters.facts(webhook({"hello": "world"})) is None


@pytest.mark.parametrize(
    ("git", "fixture", "passed", "reason"),
    [
        (GitFilter(branches=("main",)), "github-push.json", True, "passes branches"),
        (GitFilter(branches_ignore=("main",)), "github-push.json", False, "fails branchesIgnore"),
        (GitFilter(branches=("main",)), "gitea-tag-push.json", False, "only branches"),
        (GitFilter(tags=("v*",)), "github-push.json", False, "only tags"),
        (GitFilter(tags=("v1.*",)), "gitea-tag-push.json", True, "passes tags"),
        (GitFilter(tags_ignore=("v1.*",)), "gitea-tag-push.json", False, "fails tagsIgnore"),
        (GitFilter(branches=("main",), tags=("v*",)), "gitea-tag-push.json", True, "passes tags"),
        (GitFilter(paths=("src/**",)), "github-push.json", True, "matches paths"),
        (GitFilter(paths=("lib/**",)), "github-push.json", False, "none of 3"),
        (GitFilter(paths_ignore=("docs/**",)), "github-push.json", True, "is not ignored"),
        (GitFilter(paths_ignore=("docs/**", "src/**")), "github-push.json", False, "all 3"),
        (GitFilter(paths=("lib/**",)), "gitea-tag-push.json", True, "not evaluated for tags"),
        (GitFilter(paths=("lib/**",)), "bitbucket-push.json", True, "unknown"),
        (GitFilter(branches=("main",)), "github-pull-request.json", True, "passes branches"),
    ],
    ids=[
        "branch",
        "branch-ignored",
        "tag-push-with-branch-filter",
        "branch-push-with-tag-filter",
        "tag",
        "tag-ignored",
        "both-filters-tag",
        "paths",
        "paths-miss",
        "paths-ignore-partial",
        "paths-ignore-all",
        "paths-on-tag",
        "paths-unknown",
        "pr-base-branch",
    ],
)
def test_check(git: GitFilter, fixture: str, passed: bool, reason: str) -> None:
    """GitHub Actions' rules for branch, tag and path filters, with a reason for the audit trail."""
    ok, reasons = gitfilters.check(git, skip_ci=False, data=webhook(fixture_json(fixture)))
    assert passed == ok
    assert any(reason in r for r in reasons), reasons


@pytest.mark.parametrize(
    ("message", "skip_ci", "passed"),
    [
        ("Fix [skip ci]", True, False),
        ("[CI SKIP] docs", True, False),
        ("Fix [skip ci]", False, True),
        ("Fix skip ci", True, True),
    ],
    ids=["skip-ci", "ci-skip-uppercase", "disabled", "no-brackets"],
)
def test_skip_ci(message: str, skip_ci: bool, passed: bool) -> None:
    """[skip ci] / [ci skip] in the head commit message drop the push unless skipCI is false."""
    body: dict[str, Any] = {"ref": "refs/heads/main", "after": "1" * 40, "head_commit": {"message": message}}
    ok, _ = gitfilters.check(None, skip_ci=skip_ci, data=webhook(body))
    assert passed == ok


def test_git_filter_on_non_git_event_fails() -> None:
    """A dependency with filters.git does not accept events that are not Git pushes or PRs."""
    ok, reasons = gitfilters.check(GitFilter(branches=("main",)), skip_ci=True, data=webhook({"x": 1}))
    assert not ok and "not a Git" in reasons[0]


def test_render_group() -> None:
    """Concurrency groups render the documented variables; absent ones are empty."""
    data = webhook(fixture_json("github-push.json"))
    group = gitfilters.render_group(
        "{{repo}}-{{ branch }}-{{tag}}-{{sensor}}/{{trigger}}@{{eventSource}}.{{event}}",
        data=data,
        sensor="ci",
        trigger="build",
        event_source="forge",
        event="push",
    )
    assert group == "acme/widgets-main--ci/build@forge.push"


@pytest.mark.parametrize(
    "body",
    [
        {"ref": "refs/heads/main", "after": "0" * 40, "deleted": True, "commits": []},
        {"ref": "refs/heads/main", "after": "0" * 40, "commits": []},
        {"push": {"changes": [{"old": {"type": "branch", "name": "main"}, "new": None}]}},
    ],
    ids=["github-deleted", "zero-sha", "bitbucket-new-null"],
)
def test_deleted_ref_fails_git_filter(body: dict[str, Any]) -> None:
    """Deleting a branch matches its name but leaves nothing to build."""
    ok, reasons = gitfilters.check(GitFilter(branches=("main",)), skip_ci=True, data=webhook(body))
    assert not ok and "deleted" in reasons[0]
