"""The HAProxy config for the VIP: rendered, then judged by the real `haproxy -c`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tui.core.errors import UserError
from tui.core.lb.haproxy import HaproxySettings, check_config_local, render_config
from tui.core.lb.ipfw import Backend
from tui.core.pki.ca import CertificateAuthority

BACKENDS = (Backend("controller-0", "10.10.0.10"), Backend("controller-1", "10.10.0.11"),
            Backend("controller-2", "10.10.0.12"))


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is needed (scripts/install-test-deps.sh installs it)")
    directory = tmp_path_factory.mktemp("pki")
    return str(CertificateAuthority.create(directory).cert_path)


def test_config_says_what_the_seed_wants(ca_file: str) -> None:
    text = render_config(HaproxySettings(vip="10.50.0.10", backends=BACKENDS, ca_file=ca_file,
                                         inter_ms=1000))
    assert "    bind 10.50.0.10:6443" in text
    assert "    mode tcp" in text
    assert "    option httpchk GET /healthz" in text
    assert "    http-check expect status 200" in text
    assert (f"    default-server inter 1000 rise 2 fall 3 check check-ssl verify required "
            f"ca-file {ca_file}") in text
    assert "    server controller-1 10.10.0.11:6443" in text
    assert "ssl-hello-chk" not in text  # it would replace the HTTP check


def test_real_haproxy_accepts_it(ca_file: str) -> None:
    result = check_config_local(render_config(
        HaproxySettings(vip="10.50.0.10", backends=BACKENDS, ca_file=ca_file)))
    assert result.ok, result.output


def test_real_haproxy_refuses_a_missing_ca(tmp_path: Path) -> None:
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is needed (scripts/install-test-deps.sh installs it)")
    result = check_config_local(render_config(HaproxySettings(
        vip="10.50.0.10", backends=BACKENDS, ca_file=str(tmp_path / "nope.pem"))))
    assert not result.ok
    assert "nope.pem" in result.output


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"vip": "10.50.0"}, "not an IPv4 address"),
    ({"backends": ()}, "no backends"),
    ({"backends": (Backend("bad name", "10.0.0.1"),)}, "server name"),
    ({"fall": 0}, "fall is 0"),
    ({"health_path": "healthz"}, "must start with /"),
])
def test_bad_settings_are_user_errors(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"vip": "10.50.0.10", "backends": BACKENDS}
    base.update(kwargs)
    with pytest.raises(UserError, match=message):
        HaproxySettings(**base)  # type: ignore[arg-type]
