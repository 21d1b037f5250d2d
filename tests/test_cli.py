"""`crossroads serve` as a process: settings errors, workers, and draining on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import CROSSROADS, GatewayProcess, GatewayServer

MOCK = {"x-portkey-provider": "mock"}


def chat(url: str, content: str = "Hello!", **extra: object) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        headers=MOCK,
        timeout=10,
        json={"model": "mock-1", "messages": [{"role": "user", "content": content}], **extra},
    )


def test_bad_settings_exit_2_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("port: 8787\nworkerz: 2\n")
    result = subprocess.run(
        [str(CROSSROADS), "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown key `workerz`" in result.stderr and "workers" in result.stderr


def test_serves_with_settings_file_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("log_level: warning\nmax_request_bytes: 2000\n")
    gateway = GatewayProcess("--config", str(path)).start()
    try:
        assert chat(gateway.url).json()["choices"][0]["message"]["content"] == "Hello!"
        assert chat(gateway.url, "x" * 3000).status_code == 413
    finally:
        gateway.stop()


def test_two_workers_serve_and_stop() -> None:
    gateway = GatewayProcess("--workers", "2").start()
    try:
        for _ in range(10):
            assert chat(gateway.url).status_code == 200
        gateway.signal(signal.SIGTERM)
        assert gateway.wait(30) == 0
    finally:
        gateway.stop()


def assert_graceful_exit(gateway: GatewayProcess) -> None:
    # uvicorn re-raises the signal once it has shut down, so the exit status is "killed by SIGTERM".
    assert gateway.wait(20) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in gateway.output()


def stream_in_thread(url: str, model: str, out: dict[str, object]) -> threading.Thread:
    def run() -> None:
        body = b""
        try:
            with httpx.stream(
                "POST",
                f"{url}/v1/chat/completions",
                headers=MOCK,
                timeout=30,
                json={
                    "model": model,
                    "stream": True,
                    "messages": [{"role": "user", "content": "a b c d e f g h i j"}],
                },
            ) as resp:
                for part in resp.iter_raw():
                    body += part
                    out.setdefault("first_at", time.monotonic())
        except httpx.HTTPError as exc:
            out["error"] = repr(exc)
        out["body"] = body

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_for_first_chunk(out: dict[str, object]) -> None:
    deadline = time.monotonic() + 10
    while "first_at" not in out and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "first_at" in out, "the stream did not start"


def test_sigterm_lets_in_flight_streams_finish(tmp_path: Path) -> None:
    gateway = GatewayProcess(env={"CROSSROADS_DRAIN_TIMEOUT_S": "20"}).start()
    out: dict[str, object] = {}
    try:
        thread = stream_in_thread(gateway.url, "mock-1?chunk_delay_ms=150", out)
        wait_for_first_chunk(out)
        gateway.signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):  # no new connections while draining
            chat(gateway.url)
        thread.join(20)
        assert_graceful_exit(gateway)
    finally:
        gateway.stop()
    body = out["body"]
    assert isinstance(body, bytes) and body.endswith(b"data: [DONE]\n\n"), out
    assert "error" not in out


def test_drain_window_over_ends_streams_with_an_error() -> None:
    gateway = GatewayProcess(env={"CROSSROADS_DRAIN_TIMEOUT_S": "1"}).start()
    out: dict[str, object] = {}
    try:
        thread = stream_in_thread(gateway.url, "mock-1?chunk_delay_ms=1000", out)
        wait_for_first_chunk(out)
        gateway.signal(signal.SIGTERM)
        thread.join(20)
        assert_graceful_exit(gateway)
    finally:
        gateway.stop()
    body = out["body"]
    assert isinstance(body, bytes) and b"[DONE]" not in body
    last = [e for e in body.decode().split("\n\n") if e.startswith("data: ")][-1]
    assert json.loads(last[6:])["error"]["code"] == "shutting_down"


def test_check_config_prints_the_tree(tmp_path: Path) -> None:
    config = {
        "strategy": {"mode": "fallback"},
        "retry": {"attempts": 2},
        "targets": [{"provider": "openai", "api_key": "sk-hidden"}, {"provider": "groq", "weight": 2}],
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    for argument in (str(path), json.dumps(config)):
        result = subprocess.run(
            [str(CROSSROADS), "check-config", argument],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "config: fallback (moves on after any failure)" in result.stdout
        assert "config.targets[1] weight=2: groq, retry 2x on 429, 500, 502, 503, 504, 529" in result.stdout
        assert "sk-hidden" not in result.stdout


def test_check_config_finds_saved_configs_and_reports_errors(tmp_path: Path) -> None:
    settings = tmp_path / "crossroads.yaml"
    settings.write_text("configs:\n  pc-one:\n    provider: mock\n    retry: {attempts: 1}\n")
    ok = subprocess.run(
        [str(CROSSROADS), "check-config", "pc-one", "--settings", str(settings), "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"provider": "mock", "retry": {"attempts": 1}}
    bad = subprocess.run(
        [str(CROSSROADS), "check-config", '{"strategy": {"mode": "fallback"}, "targets": [{"retri": 1}]}'],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert bad.returncode == 2 and "unknown key `retri` at `targets[0]`" in bad.stderr


def check_config(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CROSSROADS), "check-config", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )


def test_check_config_reads_configs_saved_with_the_admin_api(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/catalog.db"
    gateway = GatewayServer(database_url=database).start()
    try:
        with gateway.client() as http:
            body = {
                "name": "support",
                "slug": "pc-support",
                "config": {"provider": "mock", "retry": {"attempts": 2}},
            }
            saved = http.post("/v1/configs", json=body)
            assert saved.status_code == 200, saved.text
            http.post("/v1/configs", json={"name": "old", "slug": "pc-old", "config": {"provider": "mock"}})
            http.put("/v1/configs/pc-old", json={"status": "archived"})
    finally:
        gateway.stop()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSROADS_")}
    env["CROSSROADS_DATABASE_URL"] = database
    for ref in ("pc-support", saved.json()["id"]):
        ok = check_config(ref, "--json", env=env)
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout) == {"provider": "mock", "retry": {"attempts": 2}}
        assert f"the saved config 'pc-support' (version 1) in the database {database}" in ok.stderr
    archived = check_config("pc-old", env=env)
    assert archived.returncode == 0 and "archived: requests cannot use it" in archived.stderr

    missing = check_config("pc-nope", env=env)
    assert missing.returncode == 2 and missing.stdout == ""
    assert f"a saved config in the database {database} (saved: pc-old, pc-support)" in missing.stderr
    assert "a config of the settings (no settings file: none)" in missing.stderr

    nowhere = check_config("pc-nope", env={**env, "CROSSROADS_DATABASE_URL": f"sqlite:///{tmp_path}/none.db"})
    assert nowhere.returncode == 2 and f"there is none at {tmp_path}/none.db" in nowhere.stderr
    assert not (tmp_path / "none.db").exists()  # looking does not create a database


def test_serve_says_which_database_it_uses() -> None:
    gateway = GatewayProcess().start()
    try:
        assert f"database {gateway.env['CROSSROADS_DATABASE_URL']}" in gateway.output()
    finally:
        gateway.stop()
