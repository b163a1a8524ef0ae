"""CI cannot pass by skipping: with CI set, tests/conftest.py turns every skip whose reason is not in ALLOWED_SKIPS
into a failure, wherever the skip is raised (the test, a fixture, a skipif mark, a module while it is collected).
Each case runs a real pytest in a subprocess whose conftest is this repository's own tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).resolve().parent / "conftest.py"
UNLISTED = "the frobnicator is not installed"
LISTED = "needs a CUDA GPU (none here)"

# Every way a test can skip; each module has one test, which skips with UNLISTED.
SKIPPING = {
    "in_the_test": f"""
        import pytest
        def test_it():
            pytest.skip("{UNLISTED}")
    """,
    "in_a_fixture": f"""
        import pytest
        @pytest.fixture
        def thing():
            pytest.skip("{UNLISTED}")
        def test_it(thing):
            pass
    """,
    "by_a_skipif_mark": f"""
        import pytest
        @pytest.mark.skipif(True, reason="{UNLISTED}")
        def test_it():
            pass
    """,
}
# Skips raised while the module is collected: no test item exists, the module itself is reported.
SKIPPING_AT_COLLECTION = {
    "module_level_skip": f"""
        import pytest
        pytest.skip("{UNLISTED}", allow_module_level=True)
        def test_it():
            pass
    """,
    "module_level_importorskip": """
        import pytest
        pytest.importorskip("rdistill_no_such_module")
        def test_it():
            pass
    """,
}


@pytest.fixture
def run(pytester, monkeypatch):
    """run(source, ci=...): pytest on one test module, under this repository's conftest, CI set or not."""
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))

    def run_it(source: str, *, ci: bool):
        if ci:
            monkeypatch.setenv("CI", "1")
        else:
            monkeypatch.delenv("CI", raising=False)
        pytester.makepyfile(test_module=source)
        return pytester.runpytest_subprocess("-ra", "-p", "no:cacheprovider")

    return run_it


@pytest.mark.parametrize("where", sorted(SKIPPING))
def test_an_unlisted_skip_fails_in_ci_and_stays_a_skip_elsewhere(run, where):
    result = run(SKIPPING[where], ci=True)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1 and "skipped" not in outcomes, outcomes
    result.stdout.fnmatch_lines([f"*skipped in CI: {UNLISTED} — a missing dependency, data file or binary must be "
                                 "installed by .ci/run (scripts/setup.sh --dev)*"])

    result = run(SKIPPING[where], ci=False)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(skipped=1)
    assert "skipped in CI" not in result.stdout.str()


@pytest.mark.parametrize("where", sorted(SKIPPING_AT_COLLECTION))
def test_a_skip_while_collecting_a_module_is_a_collection_error_in_ci(run, where):
    result = run(SKIPPING_AT_COLLECTION[where], ci=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR collecting test_module.py*", "*skipped in CI: *",
                                 "*must be installed by .ci/run*"])
    if where == "module_level_importorskip":
        result.stdout.fnmatch_lines(["*skipped in CI: could not import 'rdistill_no_such_module'*"])

    result = run(SKIPPING_AT_COLLECTION[where], ci=False)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()
    result.assert_outcomes(skipped=1)


def test_a_listed_skip_stays_a_skip_in_ci_and_is_named_at_the_end(run):
    result = run(f"""
        import pytest
        def test_on_a_gpu():
            pytest.skip("{LISTED}")
        def test_plain():
            pass
    """, ci=True)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*skips allowed in CI (ALLOWED_SKIPS in tests/conftest.py)*",
                                 f"test_module.py::test_on_a_gpu: {LISTED}"])


def test_expected_failures_and_passes_are_left_alone_in_ci(run):
    result = run("""
        import pytest
        @pytest.mark.xfail(reason="known bug", strict=True)
        def test_known_bug():
            assert False
        def test_plain():
            pass
    """, ci=True)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=1, xfailed=1)
    assert "skips allowed in CI" not in result.stdout.str()

