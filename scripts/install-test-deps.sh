#!/bin/sh
# Install the real components the integration tests use, and the sshd test user.
#
#   openssh-server  real OpenSSH sshd for the fleet tests and the fan-out benchmark
#   sudo            `sudo -n` behaviour (the "sudo needs a password" message)
#   bind9           real BIND for the DNS tests (RFC 2136 + TSIG)
#   librsvg2-bin    rsvg-convert, to look at snapshot SVGs
#   tmux            terminal checks and the ingest comparison
#   openssl         certificate cross-checks
#   etcd-server     a real etcd restarted behind its /health probe by the certificate push
#   etcd-client     etcdctl: with etcd-server, the lab's etcd release cache (KTHW's 3.4 line)
#   haproxy nginx   the health probes' VIP round robin and KTHW's nginx health proxy (the
#                   confined lab runs it on every controller)
#   bind9-dnsutils  dig and nsupdate, run by the DNS tests against BIND and the stand-in
#   nsd             real NSD for the DNS zone-file mode tests
#   htop whiptail dialog man-db  full-screen programs recorded for the terminal differential test
#
# Idempotent and quiet: packages already installed are skipped (no apt-get at all when
# everything is there), the user is created once.  Needs root (or sudo) on Debian/Ubuntu.
set -eu

PACKAGES="openssh-server sudo bind9 bind9-dnsutils librsvg2-bin tmux openssl zsh vim less procps etcd-server etcd-client haproxy nginx nsd htop whiptail dialog man-db"
TEST_USER="hardway-test"

if [ "$(id -u)" -eq 0 ]; then
    AS_ROOT=""
elif command -v sudo >/dev/null 2>&1; then
    AS_ROOT="sudo"
else
    echo "install-test-deps: run as root (or install sudo) to install: $PACKAGES" >&2
    exit 1
fi

missing=""
for package in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $package"
    fi
done

if [ -n "$missing" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-test-deps: no apt-get here; install:$missing" >&2
        exit 1
    fi
    echo "install-test-deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    $AS_ROOT apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    $AS_ROOT apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# sshd's privilege-separation directory (systemd creates it at boot; containers lack it).
$AS_ROOT mkdir -p /run/sshd
$AS_ROOT chmod 0755 /run/sshd

# A light login user for sshd tests: /bin/sh, no rc files, key logins allowed (UsePAM no
# refuses locked accounts, so the password field is '*' rather than '!').
if ! id "$TEST_USER" >/dev/null 2>&1; then
    $AS_ROOT useradd --create-home --shell /bin/sh "$TEST_USER"
fi
if [ "$(getent passwd "$TEST_USER" | cut -d: -f7)" != "/bin/sh" ]; then
    $AS_ROOT usermod --shell /bin/sh "$TEST_USER"
fi
$AS_ROOT usermod -p '*' "$TEST_USER"
