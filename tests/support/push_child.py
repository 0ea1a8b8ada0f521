"""A child process that pushes a certificate and its key over and over (for kill -9 tests).

``python -m tests.support.push_child INVENTORY HOST MANIFEST DIR STEM [PAUSE]`` writes the pair
``DIR/STEM.pem`` and ``DIR/STEM-key.pem`` to ``/etc/hardway-killtest/`` on HOST exactly as
the certificate rollout's put step does: clear the host's record, stage both, record them
in MANIFEST, (wait PAUSE seconds,) switch them back to back.  It prints ``ready`` once
connected and ``done`` after the switch, then waits to be killed; the parent kills it at
a random moment.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.fleet.staged import FileWrite, stage, sweep_temps
from tui.core.inventory.load import load_inventory
from tui.core.pki.restore import PushManifest

CERT = "/etc/hardway-killtest/kubernetes.pem"
KEY = "/etc/hardway-killtest/kubernetes-key.pem"


async def main(inventory_path: str, name: str, manifest_path: str, pairs: str,
               which: str, pause: str = "0") -> None:
    inventory = load_inventory(Path(inventory_path))
    policy = HostKeyPolicy(mode="strict", user_files=False,
                           record_file=Path(manifest_path).parent / "record")
    manifest = PushManifest(Path(manifest_path))
    directory = Path(pairs)
    async with Fleet.from_inventory(inventory, host_keys=policy, use_user_config=False) as fleet:
        await fleet.connect([name])
        print("ready", flush=True)
        files = [FileWrite(CERT, (directory / f"{which}.pem").read_bytes(), 0o644),
                 FileWrite(KEY, (directory / f"{which}-key.pem").read_bytes(), 0o600)]
        manifest.clear(name)
        await sweep_temps(fleet, name, [CERT, KEY])
        staged = await stage(fleet, name, files, label="kill test")
        for entry in staged.changed:
            manifest.record(name, entry.path, (), backup=entry.existed)
        await asyncio.sleep(float(pause))  # widen the staged-not-switched window
        await staged.switch()
        print("done", flush=True)
        await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
