"""`casectl config` and the settings' errors (issue 15, item 1): every effective setting with
where it came from, secrets never printed, a named config file that is missing, a bad timeout
or a bad config value is an error that names its variable, or its file and key."""

from __future__ import annotations

import json

import pytest


def settings(run, *args, env=None) -> dict:
    r = run("config", "--json", *args, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_config_names_each_setting_and_its_source(run, db, db_path, tmp_path):
    config = tmp_path / "casectl.toml"
    config.write_text(
        '[smtp]\nhost = "mail.internal"\nport = 2525\n[digest]\nto = "ops@example.com"\n'
        '[delivery]\nallow_private_targets = "10.0.0.0/8"\n[documents]\nmax_size = "5 MiB"\n',
        encoding="utf-8",
    )
    env = {
        "CASECTL_CONFIG": str(config),
        "CASECTL_SMTP_HOST": "mail.override",
        "CASECTL_SMTP_PASSWORD": "hunter2-secret",
        "CASECTL_BUSY_TIMEOUT": "3",
        "CASECTL_ACTOR": "ann",
        "CASECTL_ALLOW_PRIVATE_TARGETS": "",  # set but empty is unset: the file's key applies
    }
    s = settings(run, env=env)
    assert s["config file"] == {"value": str(config), "source": "CASECTL_CONFIG"}
    assert s["smtp.host"] == {"value": "mail.override", "source": "CASECTL_SMTP_HOST"}
    assert s["smtp.port"] == {"value": "2525", "source": "config file: [smtp] port"}
    assert s["digest.to"]["source"] == "config file: [digest] to"
    assert s["delivery.allow_private_targets"] == {
        "value": "10.0.0.0/8",
        "source": "config file: [delivery] allow_private_targets",
    }
    assert s["documents.max_size"]["source"] == "config file: [documents] max_size"
    assert s["busy timeout"] == {"value": "3 s", "source": "CASECTL_BUSY_TIMEOUT"}
    assert s["actor"] == {"value": "ann", "source": "CASECTL_ACTOR"}
    assert s["smtp.password"] == {"value": "set", "source": "CASECTL_SMTP_PASSWORD"}
    assert s["clock"]["source"] == "system clock"
    assert s["database"]["source"] == "CASECTL_DB" and s["backend"]["value"] in ("sqlite", "postgresql")
    r = run("config", env=env)  # the table form too
    assert "hunter2-secret" not in r.stdout + r.stderr and "hunter2-secret" not in json.dumps(s)
    assert "smtp.port\t2525\tconfig file: [smtp] port" in r.stdout


@pytest.mark.sqlite_only(reason="the database's source is shown for a file path given as --db or CASECTL_DB")
def test_config_tells_db_from_the_variable_and_the_option(run, tmp_path):
    other = tmp_path / "other.db"
    assert settings(run)["database"]["source"] == "CASECTL_DB"
    s = settings(run, "--db", str(other), "--actor", "bob")
    assert s["database"] == {"value": str(other), "source": "--db"}
    assert s["actor"] == {"value": "bob", "source": "--actor"}
    assert not other.exists()  # config opens nothing
    env = {"CASECTL_DB": "", "XDG_DATA_HOME": str(tmp_path / "data")}
    s = settings(run, env=env)
    assert s["database"]["source"].startswith("default")
    assert s["database"]["value"] == str(tmp_path / "data" / "casectl" / "casectl.db")


def test_the_pinned_clock_is_shown_as_such(run, db):
    s = settings(run, env={"CASECTL_NOW": "2030-01-02T03:04:05Z", "CASECTL_ALLOW_CLOCK": "1"})
    assert s["clock"]["value"] == "2030-01-02T03:04:05Z" and "CASECTL_NOW" in s["clock"]["source"]


def test_a_missing_config_file_that_was_named_is_an_error(run, db, tmp_path):
    gone = tmp_path / "typo.toml"
    for args in (["list"], ["config"], ["outbox", "deliver"]):
        r = run(*args, env={"CASECTL_CONFIG": str(gone)})
        assert r.returncode == 3, (args, r.stderr)
        assert r.stderr.splitlines() == [
            f"casectl: error: CASECTL_CONFIG: {gone} does not exist; create it, or unset CASECTL_CONFIG "
            f"to use {tmp_path}/xdg-config/casectl/config.toml"
        ]
    r = run("list", env={"CASECTL_CONFIG": str(tmp_path)})
    assert r.returncode == 3 and "is not a file" in r.stderr


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf"])
def test_a_bad_busy_timeout_is_an_error(run, db, value):
    r = run("list", env={"CASECTL_BUSY_TIMEOUT": value})
    assert r.returncode == 2
    assert "CASECTL_BUSY_TIMEOUT" in r.stderr and "positive number of seconds" in r.stderr


@pytest.mark.parametrize(
    "text, named",
    [
        ('[smtp]\nport = "abc"\n', "[smtp] port: 'abc' is not a port number"),
        ('[smtp]\ntls = "sometimes"\n', "[smtp] tls: 'sometimes' is not one of"),
        ('[smtp]\npassword_env = "not a name"\n', "[smtp] password_env"),
        ('[delivery]\nsecret_env = ["ok", "bad name"]\n', "[delivery] secret_env"),
        ('[documents]\nmax_size = "lots"\n', "[documents] max_size"),
        ("[smtp\n", "config file"),
    ],
)
def test_a_bad_config_value_names_the_file_and_the_key(run, db, tmp_path, text, named):
    config = tmp_path / "casectl.toml"
    config.write_text(text, encoding="utf-8")
    r = run("config", env={"CASECTL_CONFIG": str(config)})
    assert r.returncode == 6, r.stderr
    line = r.stderr.splitlines()[0]
    assert line.startswith("casectl: error: ") and str(config) in line and named in line, line


def test_an_smtp_variable_error_names_the_variable(run, db):
    r = run("config", env={"CASECTL_SMTP_PORT": "abc"})
    assert r.returncode == 6 and "CASECTL_SMTP_PORT: 'abc' is not a port number" in r.stderr
