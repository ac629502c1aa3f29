"""Flower, driven through its own programs: a SuperLink per federation, client keys, runs.

The platform never imports flwr (its pins clash with the platform's: federated/environment.py).
Everything here runs Flower's command-line programs from the Flower environment:

- `superlink_command`: the SuperLink a federation's server deployment runs (TLS, and only the
  SuperNodes whose public keys the platform registered may connect: `--enable-supernode-auth`).
- `FlowerControl`: the `flwr` CLI against one SuperLink's Control API: register and unregister a
  client's public key (`flwr supernode register|unregister`), submit the Flower App as a run
  (`flwr run`), read a run's status (`flwr list`), stop it. The CLI answers JSON (`--format json`)
  and exits 0 even when it failed, so every answer's `success` is checked.
- `make_tls`, `new_client_key`: the certificates of a SuperLink (a CA made for it alone, whose key
  is thrown away once the server certificate is signed) and a client's key pair (ECDSA P-384 in
  OpenSSH format, what Flower's node authentication reads). The private key is handed to the
  client once and kept nowhere.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..federated.environment import process_environment

CONNECTION = "federation"
"""The name of the SuperLink connection in the CLI's own config.toml."""
CLI_TIMEOUT_S = 120.0


class FlowerError(RuntimeError):
    """A Flower program refused or failed; the message is Flower's own."""


# -- certificates and keys ------------------------------------------------------------------------

def make_tls(directory: Path, hosts: list[str], days: int = 365) -> None:
    """ca.pem, server.pem and server.key for a SuperLink reachable as each of `hosts` (IP addresses
    or DNS names). The CA signs this one certificate; its key is never written."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ai4kg federation CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
              .issuer_name(ca_name).public_key(server_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
              .add_extension(x509.SubjectAlternativeName(names), critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_path = directory / "server.key"
    key_path.touch(mode=0o600)
    key_path.write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))


@dataclass(frozen=True)
class ClientKey:
    private_key: str
    """OpenSSH private key text: given to the client once, never stored"""
    public_key: str
    """`ecdsa-sha2-nistp384 AAAA... comment`: what the SuperLink is told to admit"""
    fingerprint: str
    """`SHA256:...` as ssh-keygen -l prints it: what the platform keeps to name the key"""


def new_client_key(comment: str) -> ClientKey:
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode("ascii")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode("ascii")
    return ClientKey(private, f"{public} {comment}", fingerprint(public))


def fingerprint(public_key: str) -> str:
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


# -- the SuperLink ---------------------------------------------------------------------------------

def superlink_command(program: str, tls: str, host: str, port: int | str, database: str,
                      install_dependencies: bool = False) -> list[str]:
    """The SuperLink of one federation: HTTPS on `host:port` (its Fleet, Control and Runtime APIs
    share it) with the certificate in the folder `tls` (ca.pem, server.pem, server.key), node
    authentication on (only registered keys connect), its state in the SQLite file `database`
    (registered keys and runs outlive a restart). Without `install_dependencies` the Flower App's
    dependencies must be in the SuperLink's environment already (the platform's Flower
    environment has them; Flower's own image installs them per run)."""
    command = [program, "--host", host, "--port", str(port), "--ssl-ca-certfile", f"{tls}/ca.pem",
               "--ssl-certfile", f"{tls}/server.pem", "--ssl-keyfile", f"{tls}/server.key", "--enable-supernode-auth",
               "--database", database]
    return command if install_dependencies else command + ["--disable-runtime-dependency-installation"]


class FlowerControl:
    """The `flwr` CLI against one SuperLink (its address and the CA that signed it)."""

    def __init__(self, bin_directory: Path, home: Path, address: str, ca_file: Path):
        self.bin = bin_directory
        self.home = home
        self.address = address
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
            f'address = {json.dumps(address)}\nroot-certificates = {json.dumps(str(ca_file))}\n', "utf-8")

    def register(self, public_key: str, name: str) -> str:
        """Admit a client's public key; the SuperLink's node id for it."""
        with tempfile.NamedTemporaryFile("w", suffix=".pub", dir=self.home, delete=True) as key_file:
            key_file.write(public_key + "\n")
            key_file.flush()
            answer = self._flwr("supernode", "register", key_file.name, CONNECTION, "--name", name)
        return str(answer["node-id"])

    def unregister(self, node_id: str) -> None:
        """Refuse the node from its next request on (its key can never be registered again)."""
        self._flwr("supernode", "unregister", node_id, CONNECTION)

    def nodes(self) -> list[dict[str, Any]]:
        return list(self._flwr("supernode", "list", CONNECTION).get("nodes", []))

    def submit(self, app: Path, run_config: dict[str, Any]) -> str:
        """Start the Flower App as a run; its run id. The run goes on inside the SuperLink."""
        settings: list[str] = []
        for key, value in run_config.items():
            settings += ["--run-config", f"{key}={toml_literal(value)}"]
        return str(self._flwr("run", str(app), CONNECTION, *settings)["run-id"])

    def run(self, run_id: str) -> dict[str, Any]:
        """The run as `flwr list` reports it (status pending|starting|running|finished:...)."""
        runs = self._flwr("list", CONNECTION, "--run-id", run_id).get("runs", [])
        if not runs:
            raise FlowerError(f"the SuperLink knows no run {run_id}")
        return dict(runs[0])

    def stop(self, run_id: str) -> None:
        self._flwr("stop", run_id, CONNECTION)

    def _flwr(self, *arguments: str) -> dict[str, Any]:
        command = [str(self.bin / "flwr"), *arguments, "--format", "json"]
        try:
            done = subprocess.run(command, env=process_environment(self.home, self.bin), capture_output=True,
                                  text=True, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise FlowerError(f"`flwr {arguments[0]}` did not answer within {CLI_TIMEOUT_S:.0f} s") from exc
        answer = _json_in(done.stdout)
        if answer is None or not answer.get("success", False):
            detail = (answer or {}).get("error-message") or done.stderr.strip() or done.stdout.strip()
            raise FlowerError(f"`flwr {' '.join(arguments[:2])}` failed: {detail[-1500:]}")
        return answer


def toml_literal(value: Any) -> str:
    """A run-config value as the TOML literal `flwr run --run-config` parses: booleans stay
    booleans and numbers numbers (the upstream server read every setting as a string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"no TOML literal for {value!r}")


def _json_in(text: str) -> dict[str, Any] | None:
    """The JSON object in a CLI's output (flwr may print a line or two before it)."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        found = json.loads(text[start:])
    except ValueError:
        return None
    return found if isinstance(found, dict) else None
