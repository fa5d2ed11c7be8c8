"""phonrec.cli.errors: a user error becomes two lines on stderr and exit status 2; a bug keeps its traceback."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from phonrec.cli.errors import EXIT_USER_ERROR, format_user_error, user_errors
from phonrec.config import ConfigError


def test_user_error_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.delenv("PHONREC_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    @user_errors("phonrec-x")
    def main() -> None:
        raise ConfigError("trainer.lr must be positive, got -1")

    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == EXIT_USER_ERROR
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "phonrec-x: error: trainer.lr must be positive, got -1",
        "phonrec-x: (PHONREC_DEBUG=1 shows the traceback)",
    ]


def test_missing_file_and_missing_key_are_user_errors(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.delenv("PHONREC_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    @user_errors("phonrec-y")
    def open_missing() -> None:
        open("/nonexistent/phonrec/file.wav")

    with pytest.raises(SystemExit):
        open_missing()
    assert "/nonexistent/phonrec/file.wav" in capsys.readouterr().err

    cfg = OmegaConf.create({"model_dir": "???"})
    with pytest.raises(MissingMandatoryValue) as info:
        cfg.model_dir  # noqa: B018
    assert format_user_error("phonrec-decode", info.value).startswith("phonrec-decode: error: Missing mandatory value")
    assert "\n" not in format_user_error("phonrec-decode", info.value)


def test_debug_shows_the_traceback_and_bugs_are_not_swallowed(monkeypatch) -> None:
    @user_errors("phonrec-z")
    def bad_value() -> None:
        raise ValueError("bad")

    monkeypatch.setenv("PHONREC_DEBUG", "1")
    with pytest.raises(ValueError, match="bad"):
        bad_value()
    monkeypatch.delenv("PHONREC_DEBUG")

    @user_errors("phonrec-z")
    def bug() -> None:
        raise KeyError("internal")

    with pytest.raises(KeyError):
        bug()
