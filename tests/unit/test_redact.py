"""The one redactor: a table of secret forms and of innocent look-alikes, run against
every sink (the redactor itself, the audit log, the console history, transcripts as
output and as broadcast lines), plus the inventory's known secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui.core.audit import AuditLog
from tui.core.console.history import History
from tui.core.console.transcript import Transcript
from tui.core.redact import REDACTED, LineRedactor, Redactor, redact, secrets_in_file

# (form, text with the secret "{S}") -- every form named in issue 18 and more
SECRET_FORMS: list[tuple[str, str]] = [
    ("curl -u user:pass", "curl -u admin:{S} https://10.0.0.1:6443/version"),
    ("curl --user user:pass", "curl --user admin:{S} https://x"),
    ("curl --user=user:pass", "curl --user=admin:{S} https://x"),
    ("URL userinfo https", "curl https://user:{S}@example.com/x"),
    ("URL userinfo git", "git clone https://bot:{S}@git.example.com/r.git"),
    ("URL userinfo etcd", "etcdctl --endpoints=https://root:{S}@127.0.0.1:2379 get /"),
    ("etcdctl --user root:pw", "etcdctl --user root:{S} member list"),
    ("etcdctl --password", "etcdctl --user root --password {S} member list"),
    ("mysql -pSECRET", "mysql -u root -p{S} cluster"),
    ("mysqldump -pSECRET", "mysqldump -h db -p{S} --all-databases"),
    ("mysql --password=", "mysql --password={S} -e 'select 1'"),
    ("export AWS_SECRET_ACCESS_KEY", "export AWS_SECRET_ACCESS_KEY={S}"),
    ("AWS_ACCESS_KEY_ID shape", "aws configure set aws_access_key_id AKIA{U}"),
    ("*_SECRET assignment", "CLIENT_SECRET={S} ./deploy"),
    ("*_SECRET_* assignment", "export OIDC_SECRET_VALUE={S}"),
    ("*_TOKEN assignment", "export GITHUB_TOKEN={S}"),
    ("*_TOKEN_* assignment", "VAULT_TOKEN_ROOT={S} vault status"),
    ("*_KEY assignment", "export API_KEY={S}"),
    ("ENCRYPTION_KEY=", "ENCRYPTION_KEY={S}"),
    ("quoted *_KEY assignment", 'export STRIPE_KEY="{S}"'),
    ("password= assignment", "env password={S} ./run"),
    ("PGPASSWORD", "PGPASSWORD={S} psql -h db"),
    ("secret: yaml", "        secret: {S}"),
    ("token: header", "curl -H 'X-Auth-Token: {S}' https://x"),
    ("Authorization: Bearer", "curl -H 'Authorization: Bearer {S}' https://x"),
    ("Authorization: Basic", "Authorization: Basic {S}"),
    ("Authorization: token", "curl -H 'Authorization: token {S}' https://api"),
    ("kubectl --token", "kubectl --token={S} get nodes"),
    ("kubectl --token space", "kubectl --token {S} get nodes"),
    ("htpasswd -b FILE user pw", "htpasswd -b /etc/nginx/htpasswd admin {S}"),
    ("htpasswd -bc FILE user pw", "htpasswd -bc /etc/nginx/htpasswd admin {S}"),
    ("htpasswd -nb user pw", "htpasswd -nb admin {S}"),
    ("openssl -k", "openssl enc -aes-256-cbc -k {S} -in a -out b"),
    ("openssl -pass pass:", "openssl pkcs12 -export -pass pass:{S} -out k.p12"),
    ("openssl -passin pass:", "openssl rsa -in k.pem -passin pass:{S}"),
    ("openssl -passout pass:", "openssl genrsa -aes256 -passout pass:{S} 2048"),
    ("echo pw | sudo -S", "echo {S} | sudo -S systemctl restart etcd"),
    ("echo quoted | sudo -S", "echo '{S}' | sudo -S -k true"),
    ("printf pw | sudo -S", "printf '%s\\n' {S} | sudo -S true"),
    ("nsupdate -y alg:name:secret", "nsupdate -y hmac-sha256:hardway-key:{S} update.txt"),
    ("nsupdate -y name:secret", "nsupdate -y hardway-key:{S}"),
    ("dig -y", "dig @10.10.0.2 -y hmac-sha256:hardway-key:{S} AXFR something.local"),
    ("--tsig-secret", "tool --tsig-secret {S} -v"),
    ("BIND secret clause", 'key "k" {{ algorithm hmac-sha256; secret "{S}"; }};'),
    ("sshpass -p", "sshpass -p {S} ssh root@10.0.0.1"),
    ("redis-cli -a", "redis-cli -h r -a {S} ping"),
    ("docker login -p", "docker login -u bot -p {S} registry.example.com"),
    ("--client-secret", "oidc --client-secret={S}"),
    ("--api-key", "tool --api-key {S}"),
    ("netrc", "machine example.com login bot password {S}"),
    ("JWT", "TOKEN_FILE=x; echo eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.{S}"),
    ("GitHub token shape", "git push https://github.com/x ghp_{S}"),
    ("Slack token shape", "curl -d token=x xoxb-{S}"),
    ("kubectl create secret --from-literal", "kubectl create secret generic db "
     "--from-literal=password={S}"),
]

# innocent look-alikes: must come out unchanged
INNOCENT: list[str] = [
    "cat /var/lib/kubernetes/kubernetes-key.pem",
    "--tls-private-key-file=/var/lib/kubernetes/kubernetes-key.pem",
    "--service-account-key-file=/var/lib/kubernetes/service-account.pem",
    "--encryption-provider-config=/var/lib/kubernetes/encryption-config.yaml",
    "grep -i password /etc/ssh/sshd_config",
    "PasswordAuthentication no",
    "echo hello | sudo tee /etc/motd",
    "curl -u admin https://x",
    "curl -k https://127.0.0.1:6443/healthz",
    "git clone git@github.com:kelseyhightower/kubernetes-the-hard-way.git",
    "dig -t A controller-0.something.local @10.10.0.2",
    "nsupdate -k /etc/bind/hardway.key update.txt",
    "openssl x509 -in ca.pem -noout -text",
    "openssl genrsa -out ca-key.pem 2048",
    "tsig-keygen -a hmac-sha256 hardway-key",
    "mysql -u root -p cluster",
    "ssh -p 2222 root@127.0.10.10",
    "ssh -l login -p 2222 host",
    "apt-get install -y etcd",
    "export ETCD_NAME=controller-0 INTERNAL_IP=10.240.0.10",
    "KUBECONFIG=admin.kubeconfig kubectl get nodes",
    "kubectl get secrets -A",
    "echo $AWS_SECRET_ACCESS_KEY",
    "ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)",
    "SSH_KEY=/root/.ssh/id_ed25519",
    "tsig_secret_file = secrets/hardway-key.secret",
    "-----BEGIN CERTIFICATE-----",
    "ssh-keygen -R 10.10.0.10",
    "systemctl status kube-apiserver",
    "[sudo] password for root:",
    "the token expires in 24h",
    "Basic checks passed",
    "https://example.com:6443/healthz",
    "scp ca.pem controller-0:/etc/etcd/",
]


def secret_for(index: int) -> str:
    return f"Zq{index:02d}x7Hb4Kp9Wd3Lm8Tr"


def cases() -> list[tuple[str, str, str]]:
    """(form, text, the secret in it); ``{U}`` is the upper-case 16-character variant."""
    out = []
    for i, (form, text) in enumerate(SECRET_FORMS):
        secret = secret_for(i).upper()[:16] if "{U}" in text else secret_for(i)
        out.append((form, text.format(S=secret, U=secret), secret))
    return out


def test_table_is_big_enough() -> None:
    assert len(SECRET_FORMS) >= 40 and len(INNOCENT) >= 30


@pytest.mark.parametrize(("form", "text", "secret"), cases(), ids=[f for f, _ in SECRET_FORMS])
def test_every_form_is_redacted_by_every_sink(tmp_path: Path, form: str, text: str,
                                             secret: str) -> None:
    redacted = redact(text)
    assert secret not in redacted and REDACTED in redacted, (form, redacted)
    # audit log: command and a detail
    audit = AuditLog(tmp_path / "audit.jsonl")
    audit.record(host="c0", kind="exec", command=text, status=0, duration=0.0,
                 error=f"failed: {text}")
    written = audit.path.read_text()
    assert secret not in written, written
    assert json.loads(written)["command"] == redacted
    # history: the line never reaches the file
    history = History(tmp_path / "history", redact=audit.redact)
    assert history.add(text) is False
    assert not (tmp_path / "history").exists() or secret not in (tmp_path / "history").read_text()
    # transcript: as output (with CRLF like a terminal) and as a broadcast line
    transcript = Transcript(tmp_path / "t.log", redact=audit.redact)
    transcript.broadcast(text)
    transcript.output(f"$ {text}\r\n{text}\r\n")
    transcript.close()
    log = (tmp_path / "t.log").read_text()
    assert secret not in log, log
    assert log.count(REDACTED) >= 3


@pytest.mark.parametrize("text", INNOCENT)
def test_innocent_look_alikes_stay_readable_in_every_sink(tmp_path: Path, text: str) -> None:
    assert redact(text) == text
    audit = AuditLog(tmp_path / "audit.jsonl")
    audit.record(host="c0", kind="exec", command=text, status=0, duration=0.0)
    assert json.loads(audit.path.read_text())["command"] == text
    history = History(tmp_path / "history", redact=audit.redact)
    assert history.add(text) is True
    assert (tmp_path / "history").read_text().splitlines() == [text]
    transcript = Transcript(tmp_path / "t.log", redact=audit.redact)
    transcript.output(f"{text}\r\n")
    transcript.close()
    assert (tmp_path / "t.log").read_text() == f"{text}\n"


def seed_inventory(tmp_path: Path, secret_text: str, encryption: str | None) -> Path:
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "secrets").mkdir()
    secret_file = tmp_path / "secrets" / "hardway-key.secret"
    secret_file.write_text(secret_text)
    secret_file.chmod(0o600)
    if encryption is not None:
        (tmp_path / "pki").mkdir()
        (tmp_path / "pki" / "encryption-config.yaml").write_text(
            "kind: EncryptionConfig\napiVersion: v1\nresources:\n  - resources:\n"
            "      - secrets\n    providers:\n      - aescbc:\n          keys:\n"
            f"            - name: key1\n              secret: {encryption}\n"
            "      - identity: {}\n")
    target = tmp_path / "inventory.toml"
    target.write_text((root / "config" / "something.local.toml").read_text())
    return target


@pytest.mark.parametrize("secret_text", [
    "c2VjcmV0LXRzaWcta2V5LXZhbHVlLTEyMzQ=\n",
    'key "hardway-key" {\n\talgorithm hmac-sha256;\n'
    '\tsecret "c2VjcmV0LXRzaWcta2V5LXZhbHVlLTEyMzQ=";\n};\n',
])
def test_inventory_secrets_are_redacted_wherever_they_appear(tmp_path: Path,
                                                             secret_text: str) -> None:
    from tui.core.inventory.load import load_inventory

    tsig = "c2VjcmV0LXRzaWcta2V5LXZhbHVlLTEyMzQ="
    key = "dGhpcyBpcyBhIDMyIGJ5dGUgZW5jcnlwdGlvbiBrZXk="
    inventory = load_inventory(seed_inventory(tmp_path, secret_text, key))
    audit = AuditLog(tmp_path / "audit.jsonl")
    audit.add_inventory_secrets(inventory)
    assert audit.redactor.known == 2
    # forms a pattern would never catch: bare values in output, inside words
    for text in (f"echo {tsig}", f"x{key}y", f"printf %s {tsig} | base64 -d"):
        assert tsig not in audit.redact(text) and key not in audit.redact(text)
    audit.record(host="c0", kind="exec", command=f"echo {tsig} {key}", status=0, duration=0)
    assert tsig not in audit.path.read_text() and key not in audit.path.read_text()
    transcript = Transcript(tmp_path / "t.log", redact=audit.redact)
    transcript.output(f"{key}\r\n")
    transcript.close()
    assert key not in (tmp_path / "t.log").read_text()
    history = History(tmp_path / "h", redact=audit.redact)
    assert history.add(f"echo {key}") is False


def test_secrets_in_file_shapes() -> None:
    assert secrets_in_file("abcd1234\n") == ["abcd1234"]
    assert secrets_in_file('key "k" { secret "Zm9v"; };') == ["Zm9v"]
    assert secrets_in_file("x: 1\n  secret: Zm9vYmFyYmF6\n") == ["Zm9vYmFyYmF6"]


PEM_LINES = ["-----BEGIN PRIVATE KEY-----",
             "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
             "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB"]


def test_begin_without_end_hides_only_the_key_lines() -> None:
    lines = LineRedactor()
    out = [lines.line(text) for text in
           ["$ grep -A2 BEGIN key.pem", *PEM_LINES, "$ echo after", "after", "done ok"]]
    assert out == ["$ grep -A2 BEGIN key.pem", "[REDACTED PRIVATE KEY]", None, None,
                   "$ echo after", "after", "done ok"]


def test_begin_without_end_in_a_transcript_keeps_what_follows(tmp_path: Path) -> None:
    transcript = Transcript(tmp_path / "t.log")
    transcript.output("\r\n".join(["$ grep -A2 BEGIN key.pem", *PEM_LINES,
                                   "$ hostname", "controller-0", ""]))
    transcript.close()
    text = (tmp_path / "t.log").read_text()
    assert "MIIEvQ" not in text and "b3Blbn" not in text
    assert text.endswith("$ hostname\ncontroller-0\n")


def test_registered_secret_shorter_than_four_is_ignored() -> None:
    redactor = Redactor(["ab", "  "])
    assert redactor.known == 0 and redactor.redact("ab cd") == "ab cd"


# -- transcripts store the command as accepted, not readline's redraw ----------------------

FIXED = __import__("datetime").datetime(2026, 1, 2, 3, 4, 5, tzinfo=__import__("datetime").UTC)


def transcript_of(tmp_path: Path, line: str, *chunks: str) -> str:
    transcript = Transcript(tmp_path / "echo.log", clock=lambda: FIXED)
    transcript.output("root@controller-0:~# ")
    transcript.command(line)
    for chunk in chunks:
        transcript.output(chunk)
    transcript.close()
    return (tmp_path / "echo.log").read_text()


def test_a_wrapped_command_is_stored_as_accepted_not_as_its_redraw(tmp_path: Path) -> None:
    secret = "Zq77x7Hb4Kp9Wd3Lm8TrQQ"
    line = f"curl -u admin:{secret} https://10.0.0.1:6443/version"
    # readline on an 40-column pane: the line wraps, with " \r" at the margin
    echo = ("root@controller-0:~# curl -u admin:Zq77x7Hb4Kp9 \rWd3Lm8TrQQ https://10.0.0.1:"
            "6443/version\r\n")
    text = transcript_of(tmp_path, line, echo[:30], echo[30:], '{"major":"1"}\r\n',
                         "root@controller-0:~# ")
    assert "Zq77" not in text and "Wd3Lm8" not in text and "Hb4Kp9" not in text
    assert text == ("# 2026-01-02T03:04:05Z broadcast: curl -u admin:[REDACTED] "
                    "https://10.0.0.1:6443/version\n"
                    '{"major":"1"}\n'
                    "root@controller-0:~# \n")


def test_echo_with_cursor_moves_and_output_in_the_same_chunk(tmp_path: Path) -> None:
    text = transcript_of(tmp_path, "echo hi",
                         "e\x1b[Kcho h\x08\x1b[Ci\r\nhi\r\nroot@controller-0:~# ")
    assert text == ("# 2026-01-02T03:04:05Z broadcast: echo hi\nhi\n"
                    "root@controller-0:~# \n")


def test_a_shell_that_does_not_echo_loses_nothing(tmp_path: Path) -> None:
    from tui.core.console.transcript import EchoSkip

    transcript = Transcript(tmp_path / "t.log", clock=lambda: FIXED)
    transcript.command("printf something-unusual")
    transcript.output("x" * (EchoSkip.ECHO_LIMIT + 10) + "\r\nend\r\n")
    transcript.close()
    lines = (tmp_path / "t.log").read_text().splitlines()
    assert lines[1] == "x" * (EchoSkip.ECHO_LIMIT + 10) and lines[2] == "end"


def test_input_for_a_program_skips_no_output(tmp_path: Path) -> None:
    transcript = Transcript(tmp_path / "t.log", clock=lambda: FIXED)
    transcript.output("Password: ")
    transcript.broadcast("yes")  # a line for a program (no command echo expected)
    transcript.output("\r\naccepted\r\n")
    transcript.close()
    assert (tmp_path / "t.log").read_text().splitlines()[-1] == "accepted"


def test_the_consoles_default_transcripts_and_history_use_the_sessions_redactor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from tui.core.console.console import Console
    from tui.core.inventory.load import load_inventory

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    inventory = load_inventory(seed_inventory(tmp_path, "c2VjcmV0LXRzaWcta2V5LXZhbHVlLTEyMzQ=\n",
                                              None))
    audit = AuditLog(tmp_path / "audit.jsonl")
    audit.add_inventory_secrets(inventory)
    fleet = SimpleNamespace(audit=audit, subscribe=lambda callback: lambda: None)
    console = Console(inventory, fleet)  # type: ignore[arg-type]
    assert console.history.add("echo c2VjcmV0LXRzaWcta2V5LXZhbHVlLTEyMzQ=") is False
    transcripts = console._transcripts
    transcripts.on = True
    transcripts.open("controller-0")
    transcripts.write("controller-0", "output", "c2VjcmV0LXRzaWcta2V5LXZhbHVlLTEyMzQ=\r\n")
    path = transcripts.path("controller-0")
    transcripts.stop()
    assert path is not None and "c2VjcmV0LXRzaWcta2V5" not in path.read_text()
    assert "[REDACTED]" in path.read_text()
