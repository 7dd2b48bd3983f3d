"""Optional C2PA embedding (extra ``veil[c2pa]``): a test CA certifies veil's own key; JPEG and
MP4 outputs then carry a C2PA manifest that C2PA readers validate, and the sidecar still
covers every byte. Skipped where c2pa-python is not installed."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from PIL import Image

from helpers import run
from veil.audit import AuditLog, load_key

c2pa = pytest.importorskip("c2pa")


def chain_for(public_key, tmp_path):
    """A throw-away CA and a leaf certificate (C2PA's profile: digitalSignature, emailProtection)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = Ed25519PrivateKey.generate()

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "veil tests")])

    def usage(sign, ca):
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False, data_encipherment=False,
                             key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)

    def base(subject, key):
        return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name("veil test CA")).public_key(key)
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=30)))

    ca = (base("veil test CA", ca_key.public_key()).add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(False, True), critical=True).sign(ca_key, None))
    leaf = (base("veil test signer", public_key).add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(True, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, None))
    path = tmp_path / "chain.pem"
    path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    return path


def _public(key):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(key.public.raw)


@pytest.fixture
def c2pa_on(tmp_path):
    res = run("audit", "c2pa-cert", chain_for(_public(load_key()), tmp_path))
    assert res.exit_code == 0 and "C2PA embedding is on" in res.output, res.output


def test_a_chain_for_another_key_is_refused(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    res = run("audit", "c2pa-cert", chain_for(Ed25519PrivateKey.generate().public_key(), tmp_path))
    assert res.exit_code == 7 and "not for veil's signing key" in res.output


def test_jpeg_output_carries_a_valid_c2pa_manifest(c2pa_on, tmp_path, astronaut):
    from veil.audit.c2pa_embed import read

    src = tmp_path / "a.png"
    Image.fromarray(astronaut).save(src)
    out = tmp_path / "a.jpg"
    assert run("anonymize", src, "-o", out, "-q").exit_code == 0
    store = read(out)
    active = store["manifests"][store["active_manifest"]]
    facts = next(a["data"] for a in active["assertions"] if a["label"] == "org.veil.provenance")
    assert facts["input"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    failures = [f["code"] for f in store["validation_results"]["activeManifest"]["failure"]]
    assert failures == ["signingCredential.untrusted"]  # our test CA is in no trust list; nothing else fails
    assert not any(a["label"].startswith("c2pa.thumbnail") for a in active["assertions"])
    assert AuditLog().events()[-1].body["items"][0]["output_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    res = run("verify", out)
    assert res.exit_code == 0 and "embedded C2PA manifest" in res.output
    data = bytearray(out.read_bytes())
    data[-200] ^= 1
    out.write_bytes(bytes(data))
    assert "assertion.dataHash.mismatch" in [f["code"] for f in read(out)["validation_results"]["activeManifest"]["failure"]]
    assert run("verify", out).exit_code == 1


def test_mp4_output_carries_a_c2pa_manifest(c2pa_on, hamilton, tmp_path):
    from veil.audit.c2pa_embed import read

    clip = hamilton
    out = tmp_path / "h.mp4"
    assert run("anonymize", clip, "-o", out, "--start", "0", "--end", "1", "-q").exit_code == 0
    store = read(out)
    assert [f["code"] for f in store["validation_results"]["activeManifest"]["failure"]] == ["signingCredential.untrusted"]
    assert run("verify", out).exit_code == 0


def test_png_outputs_keep_the_sidecar_only(c2pa_on, tmp_path, astronaut):
    src = tmp_path / "a.png"
    Image.fromarray(astronaut).save(src)
    out = tmp_path / "o.png"
    assert run("anonymize", src, "-o", out, "-q").exit_code == 0
    assert run("verify", out).exit_code == 0 and "embedded C2PA" not in run("verify", out).output
