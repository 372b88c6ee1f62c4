"""A cluster over TLS on loopback: fold jobs run when the client holds a certificate the
cluster's CA signed, and a client without one is turned away (a Dask scheduler runs whatever
it is sent, so who may connect is the whole security)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import fold_job

from benchmark.execution.cluster import DaskExecutor


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A CA certificate that is also the cluster's (127.0.0.1, localhost), and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "genrebench test cluster")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cluster.pem", folder / "cluster.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_fold_jobs_run_over_tls_and_a_client_without_a_certificate_is_refused(
    tmp_path: Path,
) -> None:
    from distributed import Client, LocalCluster, Security

    cert, key = _self_signed(tmp_path)
    files = {"tls_ca_file": str(cert)}
    for role in ("client", "scheduler", "worker"):
        files[f"tls_{role}_cert"], files[f"tls_{role}_key"] = str(cert), str(key)
    security = Security(**files, require_encryption=True)
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        protocol="tls",
        host="127.0.0.1",
        security=security,
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        executor = DaskExecutor(1, address, security)
        try:
            job = replace(fold_job(tmp_path, n_trials=2), pruner="none")
            outcome = executor.submit(job).result(timeout=300)
        finally:
            executor.shutdown()
        assert outcome.status == "done" and outcome.n_trials == 2
        (tmp_path / "other").mkdir()
        other, other_key = _self_signed(tmp_path / "other")  # a certificate of another CA
        stranger = Security(
            tls_ca_file=str(other), tls_client_cert=str(other), tls_client_key=str(other_key)
        )
        with pytest.raises((OSError, TimeoutError)):  # the TLS handshake fails
            Client(address, timeout="5s", security=stranger)
        with pytest.raises((OSError, TimeoutError)):  # no TLS at all
            Client(address.replace("tls://", "tcp://"), timeout="5s")
