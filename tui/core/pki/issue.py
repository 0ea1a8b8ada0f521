"""Issue what is missing or wrong in a PKI directory (shared by the CLI and the screen)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from tui.core.errors import UserError
from tui.core.inventory.model import Inventory
from tui.core.pki.ca import CA_CERT_FILE, CA_KEY_FILE, CertificateAuthority
from tui.core.pki.host_findings import reissue_reasons
from tui.core.pki.inspect import inspect_file
from tui.core.pki.kubeconfig import write_kubeconfigs
from tui.core.pki.profiles import profiles_for, write_pair

KeyType = Literal["rsa", "ecdsa"]


def issue_certificates(inventory: Inventory, pki: Path, *, names: Sequence[str] = (),
                       force: bool = False, dry_run: bool = False,
                       key_type: KeyType = "rsa") -> list[dict[str, object]]:
    """Create the CA if there is none and (re)issue every certificate that does not fit.

    A certificate is reissued when it is missing, signed by another CA, lacks a required
    SAN, or otherwise no longer fits its KTHW profile (see ``reissue_reasons``).  An
    existing CA is never replaced.

    Args:
        inventory: the cluster.
        pki: the PKI directory (cfssl names).
        names: only these certificates (profile names); all when empty.
        force: reissue even certificates that fit.
        dry_run: say what would happen, write nothing.
        key_type: ``rsa`` (2048) or ``ecdsa`` (P-256) for new keys.

    Returns:
        One action per certificate (CA first when it is created): ``name``, ``action``
        (created, issued, kept, would create, would issue), ``reasons`` and, for files
        that exist afterwards, ``cert``, ``fingerprint`` and ``not_after``; then one per
        doc-05 kubeconfig of the chosen certificates (``NAME.kubeconfig``: written, kept,
        would write; see :func:`tui.core.pki.kubeconfig.write_kubeconfigs`).

    Raises:
        UserError: an unknown certificate name, or an unreadable CA.
    """
    profiles = profiles_for(inventory)
    known = {p.name for p in profiles}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"certs issue: no certificate called {', '.join(unknown)} in this "
                        f"cluster; the names are {', '.join(p.name for p in profiles)}.")
    chosen = [p for p in profiles if not names or p.name in names]
    actions: list[dict[str, object]] = []
    ca_exists = (pki / CA_CERT_FILE).exists() or (pki / CA_KEY_FILE).exists()
    ca = CertificateAuthority.load(pki) if ca_exists else None
    if ca is None:
        if dry_run:
            actions.append({"name": "ca", "action": "would create", "reasons": ["no CA"]})
        else:
            ca = CertificateAuthority.create(pki, key_type=key_type)
            actions.append({"name": "ca", "action": "created",
                            "cert": str(ca.cert_path), "key": str(ca.key_path),
                            "not_after": ca.cert.not_valid_after_utc.isoformat(),
                            "reasons": [f"there was no CA in {pki}"]})
    for profile in chosen:
        cert_path, key_path = pki / profile.cert_file, pki / profile.key_file
        if not cert_path.exists() or not key_path.exists():
            reasons = ["not issued yet"]
        elif ca is None:
            reasons = ["the CA is new"]
        else:
            reasons = reissue_reasons(profile, inspect_file(cert_path), key_path.read_bytes(),
                                      ca.cert)
        if force and not reasons:
            reasons = ["--force"]
        if not reasons:
            info = inspect_file(cert_path)
            actions.append({"name": profile.name, "action": "kept", "reasons": [],
                            "cert": str(cert_path), "fingerprint": info.fingerprint,
                            "not_after": info.not_after.isoformat()})
            continue
        if dry_run or ca is None:
            actions.append({"name": profile.name, "action": "would issue", "reasons": reasons})
            continue
        issued = ca.issue(profile, key_type=key_type)
        cert_file, key_file = write_pair(pki, profile.name, issued)
        info = inspect_file(cert_file)
        actions.append({"name": profile.name, "action": "issued", "reasons": reasons,
                        "cert": str(cert_file), "key": str(key_file),
                        "fingerprint": info.fingerprint, "not_after": info.not_after.isoformat()})
    if ca is not None:  # doc 05: the kubeconfigs embed what was just issued
        actions += write_kubeconfigs(inventory, pki, ca.cert, names=names, dry_run=dry_run)
    return actions
