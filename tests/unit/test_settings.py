"""Settings come from the environment and .env, and never show a password."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from todo_data.errors import SettingsError
from todo_data.settings import DEFAULT_DATABASE_URL, Settings, find_dotenv, get_settings, source_of


def test_default_is_a_local_sqlite_file() -> None:
    settings = get_settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.database_url.startswith("sqlite")
    assert settings.test_database_url is None


def test_environment_overrides_and_result_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@h/db")
    assert get_settings().database_url == "postgresql://u:pw@h/db"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@other/db")
    assert get_settings().database_url == "postgresql://u:pw@h/db"
    get_settings.cache_clear()
    assert get_settings().database_url == "postgresql://u:pw@other/db"


def test_dotenv_file_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=postgres://me:dotenv-pw@db.example/app\nDATABASE_POOLED=true\n")
    settings = get_settings()
    assert settings.database_url == "postgres://me:dotenv-pw@db.example/app"
    assert settings.database_pooled is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("off", False),
    ],
)
def test_database_pooled_takes_the_usual_boolean_spellings(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    monkeypatch.setenv("DATABASE_POOLED", raw)
    assert get_settings().database_pooled is expected


def test_repr_and_str_mask_passwords() -> None:
    settings = Settings(
        database_url="postgresql://u:topsecret@h/db",
        test_database_url="postgresql://t:alsosecret@h/t",
    )
    for text in (repr(settings), str(settings)):
        assert "topsecret" not in text and "alsosecret" not in text
        assert "postgresql://u:***@h/db" in text


def test_malformed_url_is_a_settings_error_saying_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:topsecret@h/db?sslmode=sometimes")
    with pytest.raises(SettingsError) as exc:
        _ = get_settings().database_url
    assert "DATABASE_URL" in str(exc.value) and "sslmode='sometimes'" in str(exc.value)
    assert "topsecret" not in str(exc.value)


def test_bad_boolean_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_POOLED", "perhaps")
    with pytest.raises(SettingsError, match="DATABASE_POOLED"):
        _ = get_settings().database_pooled


def test_blank_database_url_falls_back_to_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "  ")
    assert get_settings().database_url == DEFAULT_DATABASE_URL


def test_blank_optional_urls_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_DIRECT_URL", "")
    monkeypatch.setenv("TEST_DATABASE_URL", " ")
    settings = get_settings()
    assert settings.database_direct_url is None and settings.test_database_url is None


def test_blank_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setenv("DATABASE_POOLED", "")
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT", "")
    settings = get_settings()
    assert settings.database_pooled is None and settings.database_statement_timeout is None
    assert "database_url" not in settings.model_fields_set  # so the demo database applies


def test_a_missing_sslrootcert_is_a_settings_error_not_a_bare_file_not_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql://u:topsecret@h/db?sslmode=verify-full&sslrootcert={tmp_path}/x.crt"
    )
    with pytest.raises(SettingsError) as exc:
        _ = get_settings().database_url
    assert "DATABASE_URL" in str(exc.value) and "sslrootcert" in str(exc.value) and "does not exist" in str(exc.value)
    assert "topsecret" not in str(exc.value)


@pytest.mark.parametrize("raw", ["0", "0.0", ""])
def test_statement_timeout_zero_or_unset_means_no_limit(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT", raw)
    assert get_settings().database_statement_timeout is None


def test_statement_timeout_takes_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT", "2.5")
    assert get_settings().database_statement_timeout == 2.5


@pytest.mark.parametrize("raw", ["-1", "nan", "NaN", "inf", "-inf", "soon", "30s"])
def test_statement_timeout_nonsense_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT", raw)
    with pytest.raises(SettingsError, match="DATABASE_STATEMENT_TIMEOUT") as exc:
        _ = get_settings().database_statement_timeout
    assert "seconds" in str(exc.value)


# --- .env: from the working directory upwards, the nearest one wins, the environment wins ---


def test_dotenv_of_the_project_is_found_from_a_subdirectory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / ".env").write_text("DATABASE_URL=postgresql://me:pw@neon.example/app\n")
    monkeypatch.chdir(project / "notebooks")  # where JupyterLab starts a notebook's kernel
    assert get_settings().database_url == "postgresql://me:pw@neon.example/app"
    assert find_dotenv() == project / ".env"


def test_the_nearest_dotenv_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / ".env").write_text("DATABASE_URL=postgresql://me:pw@outer.example/app\nDATABASE_POOLED=true\n")
    (project / "notebooks" / ".env").write_text("DATABASE_URL=postgresql://me:pw@inner.example/app\n")
    monkeypatch.chdir(project / "notebooks")
    settings = get_settings()
    assert settings.database_url == "postgresql://me:pw@inner.example/app"
    assert settings.database_pooled is None  # one file is read, not a merge of several


def test_the_environment_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://me:pw@dotenv.example/app\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql://me:pw@environment.example/app")
    assert get_settings().database_url == "postgresql://me:pw@environment.example/app"


def test_no_dotenv_anywhere_up_to_the_test_root_reads_nothing(tmp_path: Path) -> None:
    assert find_dotenv() == tmp_path.parent / ".env"  # the empty one the test session puts there
    assert get_settings().model_fields_set == set()


def test_settings_tests_see_no_database_or_test_variables_of_the_developer() -> None:
    leaked = [name for name in os.environ if name.startswith(("DATABASE_", "TEST_DATABASE_"))]
    assert leaked == []


def test_source_of_says_where_a_setting_comes_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://me:pw@dotenv.example/app\n")
    assert source_of("DATABASE_URL") == str(tmp_path / ".env")
    assert source_of("DATABASE_POOLED") == "its default"
    monkeypatch.setenv("DATABASE_URL", "postgresql://me:pw@environment.example/app")
    assert source_of("DATABASE_URL") == "the environment"


def test_an_explicit_env_file_is_used_as_given(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATABASE_POOLED=true\n")
    (tmp_path / "other.env").write_text("DATABASE_POOLED=false\n")
    assert Settings(_env_file=tmp_path / "other.env").database_pooled is False
    assert Settings(_env_file=None).database_pooled is None
    assert Settings().database_pooled is True


def test_env_example_documents_every_setting() -> None:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    undocumented = [name.upper() for name in Settings.model_fields if f"# {name.upper()}=" not in example]
    assert undocumented == []


# --- a bad value stops only what reads it, and says where it came from ---


def test_a_bad_value_names_the_environment_as_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_LOCK_TIMEOUT", "soon")
    with pytest.raises(SettingsError) as exc:
        _ = get_settings().database_lock_timeout
    assert str(exc.value).startswith("Invalid setting DATABASE_LOCK_TIMEOUT (from the environment): ")


def test_a_bad_value_in_dotenv_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / ".env").write_text("DATABASE_URL=postgresql://u:hunter2@h:port/db\n")
    monkeypatch.chdir(project / "notebooks")
    with pytest.raises(SettingsError) as exc:
        _ = get_settings().database_url
    message = str(exc.value)
    assert f"DATABASE_URL (from {project / '.env'})" in message and 'invalid integer value "port"' in message
    assert "hunter2" not in message


def test_a_bad_value_stops_only_what_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_LOCK_TIMEOUT", "-1")
    monkeypatch.setenv("DATABASE_POOLED", "perhaps")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@h/db")
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT", "2.5")
    settings = get_settings()
    assert settings.database_url == "postgresql://u:pw@h/db" and settings.database_statement_timeout == 2.5
    with pytest.raises(SettingsError, match="DATABASE_LOCK_TIMEOUT"):
        _ = settings.database_lock_timeout
    with pytest.raises(SettingsError, match="DATABASE_POOLED") as pooled:
        _ = settings.database_pooled
    assert "LOCK_TIMEOUT" not in str(pooled.value)  # each one its own message
    assert "(invalid)" in repr(settings) and "pw" not in repr(settings)
    assert {"database_lock_timeout", "database_pooled", "database_url"} <= settings.model_fields_set


def test_values_given_to_load_settings_are_named_as_such() -> None:
    from todo_data.settings import load_settings

    with pytest.raises(SettingsError, match=r"DATABASE_LOCK_TIMEOUT \(given to load_settings\)"):
        _ = load_settings(database_lock_timeout=-2).database_lock_timeout
