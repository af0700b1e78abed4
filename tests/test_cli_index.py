"""The `assistant` CLI: ingest, search, doctor, their help and their errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from assistant.cli import build_parser, main


def test_every_command_and_option_is_described():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"ingest", "search", "doctor"} <= set(sub.choices)
    one_line = {a.dest: a.help for a in sub._choices_actions}  # `assistant --help` lists these
    for name, p in sub.choices.items():
        assert one_line.get(name), f"`{name}` has no line in `assistant --help`"
        assert p.description, f"`assistant {name} --help` has no description"
        for action in p._actions:
            if action.dest != "help":
                assert action.help, f"`{name}` {action.option_strings or action.dest} has no help"


def test_ingest_then_search_json_follows_the_contract(capsys):
    assert main(["ingest", "--quiet"]) == 0
    assert "Indexed" in capsys.readouterr().out
    assert main(["ingest", "--quiet"]) == 0
    assert "fresh" in capsys.readouterr().out

    assert main(["search", "--json", "--k", "3", "how do i tell her i feel far away"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 3
    for r in results:
        assert {"section_id", "text", "score"} <= r.keys()
        assert isinstance(r["score"], float)
    assert results[0]["score"] >= results[-1]["score"]


def test_search_prints_readable_passages(capsys):
    assert main(["search", "date night ideas"]) == 0
    out = capsys.readouterr().out
    assert "1. [tip-3]" in out


@pytest.mark.parametrize("query", ["", "   ", "\x00\x01"])
def test_empty_query_is_a_clear_error(capsys, query):
    assert main(["search", query]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_a_100kb_query_is_truncated_with_a_notice(capsys):
    assert main(["search", "--json", "lonely " * 15000]) == 0
    captured = capsys.readouterr()
    assert "only its first" in captured.err
    assert json.loads(captured.out)


def test_k_out_of_range_is_an_error(capsys):
    assert main(["search", "--k", "0", "hello"]) == 1
    assert "--k" in capsys.readouterr().err


def test_doctor_masks_secrets_and_reports_the_index(capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-123456")
    code = main(["doctor", "--json"])
    out = capsys.readouterr().out
    assert "SECRET" not in out and "sk-test" not in out
    report = json.loads(out)
    assert report["settings"]["openai_api_key"] == "(set, hidden)"
    assert report["model"]["checksum_ok"] is True
    assert report["chroma_mode"] == "embedded"
    assert report["index"]["fingerprint"]
    assert report["index"]["state"].startswith("missing")  # a fresh data folder: not built
    assert code == 0 and report["ok"] is True  # a missing index is built on start: not a fault
    assert main(["ingest", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["doctor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["index"]["state"] == "fresh"


@pytest.mark.server  # runs the CLI in a process of its own
def test_console_script_runs_without_a_traceback_on_bad_input(tmp_path):
    exe = [sys.executable, "-m", "assistant", "search", ""]
    proc = subprocess.run(exe, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out.lower()
