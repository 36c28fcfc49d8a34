"""`k1n`: the command dispatcher."""

from __future__ import annotations

import logging

from k1n import cli


def test_check_spec_validates_the_shipped_spec(capsys):
    assert cli.main(["check-spec"]) == 0
    assert "22 tasks" in capsys.readouterr().out


def test_an_unknown_command_prints_the_usage_and_exits_2(capsys):
    assert cli.main(["no-such-command"]) == 2
    assert "Commands:" in capsys.readouterr().err


def test_http_requests_are_not_logged_line_by_line(monkeypatch):
    # The demo polls its runs every 0.5 s; httpx at INFO would print a line per request.
    monkeypatch.setattr(logging.getLogger("httpx"), "level", logging.NOTSET)
    cli.main(["check-spec"])
    assert logging.getLogger("httpx").level == logging.WARNING
