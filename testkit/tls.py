"""The proxy's self-signed certificate for the e2e topology, made with `cryptography`.

The same kind of certificate the dev stack gets from pulumi_tls (components/specs/tls.py):
an ECDSA P-256 key, the hostnames as IP / DNS subject alternative names, server-auth use.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from components.specs import tls as cert_spec

# Only the curve the stack asks for is made here.
_CURVES = {"P256": ec.SECP256R1}


@dataclass(frozen=True)
class SelfSigned:
    cert_pem: str
    key_pem: str
    # base64(SHA-256(SubjectPublicKeyInfo)): how Chromium's --ignore-certificate-errors-spki-list names a key.
    spki_sha256_b64: str


def self_signed(hostnames: Sequence[str]) -> SelfSigned:
    key = ec.generate_private_key(_CURVES[cert_spec.ECDSA_CURVE]())
    ips, names = cert_spec.split_hostnames(hostnames)
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, cert_spec.ORGANIZATION),
    ])  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=cert_spec.VALIDITY_HOURS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        # cert_spec.ALLOWED_USES: digital_signature, key_encipherment, server_auth.
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return SelfSigned(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        spki_sha256_b64=base64.b64encode(hashlib.sha256(spki).digest()).decode(),
    )
