"""The confined lab as an ordinary user (issue 10): where unprivileged user namespaces are
enabled, a user who is not root starts it, is root on every host, and KTHW's commands
(``sudo mkdir -p /etc/etcd``, writes to /tmp) stay on their host.

The suite runs as root, so the test drops to ``nobody`` with ``setpriv``. Python and the
project may live under a 0700 home: they are bind-mounted, in a mount namespace of the
test's own (``unshare --mount``), under a directory ``nobody`` can read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from tui.lab import namespaces

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = '''
import asyncio, os, sys, tempfile
from pathlib import Path
from tui.lab.lab import LabRunner
from tui.core.inventory.load import load_inventory
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
home = Path(os.environ["HOME"])
runner = LabRunner(home / "lab", network=sys.argv[1], controllers=2,
                   isolation="namespaces", scenario="certs-pushed")
runner.start()
try:
    inventory = load_inventory(runner.lab.inventory_path)
    async def go():
        policy = HostKeyPolicy(record_file=home / "record", user_files=False)
        async with Fleet.from_inventory(inventory, host_keys=policy,
                                        use_user_config=False) as fleet:
            results = await fleet.run(None, "id -u; sudo mkdir -p /etc/etcd-nobody-test "
                                            "&& ls -d /etc/etcd-nobody-test; "
                                            "touch /tmp/x-$HOST_NAME; ls /tmp")
            for name, result in sorted(results.items()):
                print(name, result.status, " ".join(result.stdout.split()), result.stderr.strip())
    asyncio.run(go())
finally:
    runner.stop()
print("uid", os.getuid())
'''


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to drop to nobody"
    for tool in ("setpriv", "unshare", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return namespaces.unavailable()


@pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))
def test_an_ordinary_user_runs_the_confined_lab() -> None:
    base = Path(tempfile.mkdtemp(prefix="hardway-nobody-", dir="/tmp"))
    try:
        base.chmod(0o755)
        mounts = {"py": Path(sys.base_prefix), "repo": ROOT,
                  "site": Path(sysconfig.get_paths()["purelib"])}
        for name in mounts:
            (base / name).mkdir()
        home = base / "home"
        home.mkdir()
        os.chown(home, 65534, 65534)
        (base / "script.py").write_text(SCRIPT)
        version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        binds = " && ".join(f"mount --bind {src} {base / name}" for name, src in mounts.items())
        command = (f"{binds} && exec setpriv --reuid=65534 --regid=65534 --clear-groups "
                   f"env HOME={home} LD_LIBRARY_PATH={base}/py/lib "
                   f"PYTHONPATH={base}/site:{base}/repo PATH=/usr/sbin:/usr/bin:/sbin:/bin "
                   f"{base}/py/bin/{version} {base}/script.py 127.0.191")
        result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                 command], capture_output=True, text=True, timeout=120,
                                check=False)
        lines = result.stdout.splitlines()
        assert result.returncode == 0, (result.stdout, result.stderr[-2000:])
        assert lines[-1] == "uid 65534", lines
        for index, name in enumerate(("controller-0", "controller-1")):
            words = lines[index].split()
            # status 0, root on the host, its own /etc and its own /tmp (only its file)
            assert words[:4] == [name, "0", "0", "/etc/etcd-nobody-test"], lines
            assert f"x-{name}" in words and not any(
                w.startswith("x-") and w != f"x-{name}" for w in words), lines
        assert not Path("/etc/etcd-nobody-test").exists()
        assert not Path("/tmp/x-controller-0").exists()
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)
