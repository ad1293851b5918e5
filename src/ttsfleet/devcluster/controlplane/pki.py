"""The cluster's certificates and keys, made locally for each run: a CA, the apiserver's serving
certificate, client certificates per component, and the service-account signing key pair."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=30)
CA_NAME = "ttsfleet-devcluster-ca"
# The names a client inside or outside the cluster may use for the apiserver, and the Service IP the
# apiserver allocates to `kubernetes.default` (the first of --service-cluster-ip-range).
SERVING_DNS = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
SERVING_IPS = ("127.0.0.1", "10.96.0.1")


@dataclass(frozen=True)
class KeyPair:
    certificate: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: KeyPair
    serving: KeyPair
    admin: KeyPair
    controller_manager: KeyPair
    scheduler: KeyPair
    service_account_key: Path
    service_account_public: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


class _Authority:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.key = _key()
        self.name = _name(CA_NAME)
        certificate = (
            _builder(self.name, self.name, self.key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.pair = self._save("ca", self.key, certificate)

    @classmethod
    def load(cls, ca: KeyPair) -> _Authority:
        """The authority of an existing PKI, to sign more client certificates with its key."""
        authority = cls.__new__(cls)
        authority.directory = ca.certificate.parent
        key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        authority.key = key
        authority.name = _name(CA_NAME)
        authority.pair = ca
        return authority

    def _save(self, stem: str, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> KeyPair:
        pair = KeyPair(self.directory / f"{stem}.crt", self.directory / f"{stem}.key")
        pair.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        _write_key(key, pair.key)
        return pair

    def issue(
        self,
        stem: str,
        common_name: str,
        *,
        organization: str | None = None,
        server: bool = False,
        dns_names: tuple[str, ...] = SERVING_DNS,
        ip_addresses: tuple[str, ...] = SERVING_IPS,
    ) -> KeyPair:
        key = _key()
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _builder(_name(common_name, organization), self.name, key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
            names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return self._save(stem, key, builder.sign(self.key, hashes.SHA256()))


def create(directory: Path) -> Pki:
    """Write a fresh PKI into `directory` (private keys readable by the owner only)."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = _Authority(directory)
    signing = _key()
    service_account_key = directory / "service-account.key"
    _write_key(signing, service_account_key)
    service_account_public = directory / "service-account.pub"
    service_account_public.write_bytes(
        signing.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return Pki(
        ca=authority.pair,
        serving=authority.issue("apiserver", "kube-apiserver", server=True),
        # system:masters is the bootstrap superuser group; only the launcher and the node agent use it.
        admin=authority.issue("admin", "ttsfleet-admin", organization="system:masters"),
        # The names the apiserver's bootstrap RBAC policy grants these components' roles to.
        controller_manager=authority.issue("controller-manager", "system:kube-controller-manager"),
        scheduler=authority.issue("scheduler", "system:kube-scheduler"),
        service_account_key=service_account_key,
        service_account_public=service_account_public,
    )


def issue_client(credentials: Pki, stem: str, common_name: str, organization: str | None = None) -> KeyPair:
    """A further client certificate signed by the cluster's CA, beside the others: a node's
    (`system:node:<name>` in `system:nodes`) or the Service proxy's (`system:kube-proxy`)."""
    return _Authority.load(credentials.ca).issue(stem, common_name, organization=organization)


def issue_serving(
    credentials: Pki,
    stem: str,
    common_name: str,
    dns_names: tuple[str, ...],
    ip_addresses: tuple[str, ...] = (),
) -> KeyPair:
    """A serving certificate signed by the cluster's CA for the given names: a node agent's kubelet
    endpoint (its InternalIP), or an aggregated API server (`<service>.<namespace>.svc`, the name the
    aggregator checks)."""
    authority = _Authority.load(credentials.ca)
    return authority.issue(stem, common_name, server=True, dns_names=dns_names, ip_addresses=ip_addresses)
