"""TSIG key files: read only when asked, every format, errors that never show the secret."""

from __future__ import annotations

import base64
from pathlib import Path

import dns.message
import dns.rcode
import dns.tsig
import dns.update
import pytest

from tui.core.dns.tsig import TsigKeyRef, read_response, sign
from tui.core.errors import UserError
from tui.lab.dns_server import write_secret_file

SECRET = base64.b64encode(b"s" * 32).decode()


def test_reference_holds_no_secret_until_loaded(tmp_path: Path) -> None:
    path = tmp_path / "key"
    ref = TsigKeyRef("hardway-key", "hmac-sha256", path)
    assert SECRET not in repr(ref)
    path.write_text(SECRET + "\n")
    key = ref.load()
    assert key.secret == b"s" * 32 and key.name.to_text() == "hardway-key."


def test_bind_key_statement_picks_the_named_key(tmp_path: Path) -> None:
    path = tmp_path / "keys.conf"
    other = base64.b64encode(b"o" * 32).decode()
    path.write_text(f'key "other" {{ algorithm hmac-sha512; secret "{other}"; }};\n'
                    f'key "hardway-key" {{\n\talgorithm hmac-sha384;\n\tsecret "{SECRET}";\n}};\n')
    key = TsigKeyRef("hardway-key", "hmac-sha256", path).load()
    assert key.secret == b"s" * 32
    assert key.algorithm.to_text() == "hmac-sha384."


def test_lab_writes_the_secret_file_mode_600(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "hardway-key.secret"
    secret = write_secret_file(path, "hardway-key")
    assert path.stat().st_mode & 0o777 == 0o600
    assert TsigKeyRef("hardway-key", "hmac-sha256", path).load().secret == \
        base64.b64decode(secret)


@pytest.mark.parametrize(("content", "words"), [
    (None, "does not exist"),
    ("not base64 !!!\n", "no usable secret"),
    ("@@@@\n", "not valid base64"),
    ('key "someone" { algorithm hmac-sha256; secret "c2VjcmV0"; };', "no usable secret"),
])
def test_bad_secret_files_are_one_paragraph(tmp_path: Path, content: str | None,
                                           words: str) -> None:
    path = tmp_path / "key"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=words) as error:
        TsigKeyRef("hardway-key", "hmac-sha256", path).load()
    assert str(path) in str(error.value)
    assert "c2VjcmV0" not in str(error.value)


def test_sign_with_a_clock_and_read_badtime() -> None:
    key = dns.tsig.Key("hardway-key.", b"s" * 32, "hmac-sha256")
    message = dns.update.UpdateMessage("cluster.test.")
    signed = sign(message, key, clock=lambda: 1_000_000)
    parsed = dns.message.from_wire(signed.wire, keyring=False)
    assert parsed.tsig is not None and parsed.tsig[0].time_signed == 1_000_000
    # The server's BADTIME answer: signed at the request's time, its clock in "other".
    response = dns.message.make_response(parsed)
    response.tsig = None
    response.want_tsig_sign = False
    response.set_rcode(dns.rcode.NOTAUTH)
    other = (1_000_600).to_bytes(6, "big")
    answer = sign(response, key, clock=lambda: 1_000_000, error=18, other=other,
                  request_mac=signed.mac)
    read = read_response(answer.wire, key, signed)
    assert read.tsig_error == "BADTIME" and read.server_time == 1_000_600
    badsig = sign(response, key, clock=lambda: 1_000_000, error=16, request_mac=signed.mac)
    assert read_response(badsig.wire, key, signed).tsig_error == "BADSIG"
