"""Shared fixtures: the real Nitro documents, and a real enclave server (development
attester, real model) with bundles saved by the Rust `attest` CLI."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def _binary(variable: str, name: str) -> Path:
    path = Path(os.environ.get(variable) or REPO / "target" / "debug" / name)
    if not path.is_file():
        pytest.fail(
            f"the Rust binary {name} is missing at {path}: build it with "
            f"`cargo build -p attest -p enclave` (or set {variable})"
        )
    return path


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    directory = Path(
        os.environ.get("NITRO_VECTORS_DIR") or REPO.parent / "shared" / "vectors" / "nitro"
    )
    if not (directory / "marlin_aws_2024-12-13.cbor").is_file():
        pytest.fail(
            f"real Nitro attestation documents not found at {directory}: put the shared "
            "vectors in shared/vectors/nitro/ beside the checkout, or set NITRO_VECTORS_DIR"
        )
    return directory


@pytest.fixture(scope="session")
def model_path() -> Path:
    path = Path(
        os.environ.get("ATTESTED_MODEL_PATH")
        or REPO / ".cache" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    )
    if not path.is_file():
        pytest.fail(f"the model is missing at {path}: run scripts/fetch-model.sh")
    return path


class Enclave:
    """A running `enclave serve` (development attester) and the `attest` CLI to talk to it."""

    def __init__(self, process, url: str, root_pem: Path, workdir: Path):
        self.process = process
        self.url = url
        self.root_pem = root_pem
        self.workdir = workdir
        self.attest = _binary("ATTEST_BIN", "attest")

    def chat(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.attest), "chat", "--url", self.url, "--root", str(self.root_pem), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture(scope="session")
def enclave(model_path: Path):
    enclave_bin = _binary("ENCLAVE_BIN", "enclave")
    workdir = Path(tempfile.mkdtemp(prefix="attested-inference-pytest-"))
    process = subprocess.Popen(
        [
            str(enclave_bin),
            "serve",
            "--model", str(model_path),
            "--model-sha256", MODEL_SHA256,
            "--listen", "tcp:127.0.0.1:0",
            "--attester", "dev",
            "--dev-pki", str(workdir / "dev-pki"),
            "--server-names", "localhost,127.0.0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    found = threading.Event()
    address: list[str] = []

    def read_output():
        for line in process.stdout:
            lines.append(line)
            match = re.search(r"listening on tcp:(\S+)", line)
            if match and not found.is_set():
                address.append(match.group(1))
                found.set()

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    try:
        if not found.wait(timeout=180):
            pytest.fail("enclave serve did not start within 180 s:\n" + "".join(lines))
        yield Enclave(process, f"https://{address[0]}", workdir / "dev-pki" / "root.pem", workdir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def saved_bundles(enclave: Enclave) -> dict:
    """Evidence bundles saved by `attest chat --save-evidence`: non-streamed and streamed."""
    bundles = {}
    for kind, extra in (("plain", []), ("stream", ["--stream"])):
        path = enclave.workdir / f"{kind}.json"
        result = enclave.chat(
            "--model-sha256", MODEL_SHA256,
            "--max-tokens", "12",
            "--save-evidence", str(path),
            *extra,
            "What is the capital of France?",
        )
        assert result.returncode == 0, result.stderr
        assert "receipt:       verified" in result.stderr
        bundles[kind] = {"path": path, "stdout": result.stdout, "json": json.loads(path.read_text())}
    return bundles
