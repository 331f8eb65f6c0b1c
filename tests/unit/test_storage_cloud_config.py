"""Each cloud's environment to client settings: credential chains, the http:// rule, errors that
name the variable; and open_store's lazy obstore import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from spire_oidc.config.storage_url import parse_storage_url
from spire_oidc.storage.base import StorageError
from spire_oidc.storage.cloud import compose_etag, split_etag, summary
from spire_oidc.storage.cloud_config import (
    EMULATOR_ACCOUNT,
    EMULATOR_KEY,
    cloud_settings,
    parse_connection_string,
)
from tests.paths import REPO

S3 = parse_storage_url("s3://bucket/pre/fix")
AZ = parse_storage_url("az://container/pre")
GS = parse_storage_url("gs://bucket")


def test_s3_https_by_default_and_keys_from_the_environment() -> None:
    """No endpoint variable: AWS's https endpoint, no plain HTTP; the key pair is passed on."""
    env = {
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "AWS_REGION": "eu-west-1",
    }
    s = cloud_settings(S3, env)
    assert s.allow_http is False and s.endpoint is None
    assert s.config["access_key_id"] == "AKIA" and s.config["region"] == "eu-west-1"
    assert s.explicit_credentials and "s3cr3t" not in repr(s)
    assert s.describe() == "S3 storage s3://bucket/pre/fix"


@pytest.mark.parametrize("var", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"])
def test_s3_http_only_when_the_endpoint_variable_says_so(var: str) -> None:
    """allow_http is on only for an endpoint written http://; https:// keeps it off, and a
    global AWS_ALLOW_HTTP switch changes nothing."""
    plain = cloud_settings(S3, {var: "http://127.0.0.1:8333/"})
    assert plain.allow_http is True and plain.config["endpoint"] == "http://127.0.0.1:8333"
    tls = cloud_settings(S3, {var: "https://minio.example:9000", "AWS_ALLOW_HTTP": "true"})
    assert tls.allow_http is False


def test_s3_endpoint_without_scheme_is_refused_naming_the_variable() -> None:
    """An endpoint that is neither https:// nor http:// is an error naming the variable."""
    with pytest.raises(StorageError) as err:
        cloud_settings(S3, {"AWS_ENDPOINT_URL": "127.0.0.1:8333"})
    assert "AWS_ENDPOINT_URL" in str(err.value) and "https://" in str(err.value)


def test_s3_half_a_key_pair_names_the_missing_variable() -> None:
    """AWS_ACCESS_KEY_ID without AWS_SECRET_ACCESS_KEY (or the reverse) names the missing one."""
    with pytest.raises(StorageError) as err:
        cloud_settings(S3, {"AWS_ACCESS_KEY_ID": "AKIA"})
    assert err.value.reason == "credentials"
    assert "AWS_SECRET_ACCESS_KEY is not" in str(err.value)
    with pytest.raises(StorageError, match="AWS_ACCESS_KEY_ID is not"):
        cloud_settings(S3, {"AWS_SECRET_ACCESS_KEY": "x"})


def test_s3_web_identity_and_instance_profile() -> None:
    """Web identity (token file + role) is used when there are no keys; with nothing at all the
    instance profile is left to the chain (not explicit) and the hint lists every way."""
    web = cloud_settings(
        S3,
        {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r"},
    )
    assert web.config["web_identity_token_file"] == "/var/run/token" and web.explicit_credentials
    assert web.secret_variable == "AWS_WEB_IDENTITY_TOKEN_FILE"
    with pytest.raises(StorageError, match="AWS_ROLE_ARN"):
        cloud_settings(S3, {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token"})
    bare = cloud_settings(S3, {})
    assert not bare.explicit_credentials
    for name in ("AWS_ACCESS_KEY_ID", "AWS_WEB_IDENTITY_TOKEN_FILE", "instance profile"):
        assert name in bare.no_credentials_hint


def test_azure_account_key_and_endpoint() -> None:
    """Account name + key; an http:// AZURE_STORAGE_ENDPOINT allows plain HTTP, nothing else."""
    env = {
        "AZURE_STORAGE_ACCOUNT_NAME": "acct",
        "AZURE_STORAGE_ACCOUNT_KEY": "a2V5",
        "AZURE_STORAGE_ENDPOINT": "http://127.0.0.1:10000/acct",
    }
    s = cloud_settings(AZ, env)
    assert (s.config["account_name"], s.config["account_key"]) == ("acct", "a2V5")
    assert s.allow_http is True and s.secret_variable == "AZURE_STORAGE_ACCOUNT_KEY"
    no_endpoint = cloud_settings(AZ, {k: v for k, v in env.items() if "ENDPOINT" not in k})
    assert no_endpoint.allow_http is False and "endpoint" not in no_endpoint.config


def test_azure_without_an_account_names_the_variable() -> None:
    """No account anywhere: the error names AZURE_STORAGE_ACCOUNT_NAME."""
    with pytest.raises(StorageError, match="AZURE_STORAGE_ACCOUNT_NAME"):
        cloud_settings(AZ, {"AZURE_STORAGE_ACCOUNT_KEY": "a2V5"})


def test_azure_connection_string() -> None:
    """A connection string gives account, key and blob endpoint (values may contain '=')."""
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={EMULATOR_KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    )
    assert parse_connection_string(conn)["AccountKey"] == EMULATOR_KEY
    s = cloud_settings(AZ, {"AZURE_STORAGE_CONNECTION_STRING": conn})
    assert s.config["account_key"] == EMULATOR_KEY and s.allow_http is True
    assert "AZURE_STORAGE_CONNECTION_STRING" in s.secret_variable


def test_azure_emulator_needs_an_explicit_endpoint() -> None:
    """AZURE_STORAGE_USE_EMULATOR supplies the development account, but plain HTTP needs the
    endpoint variable (no default http:// endpoint behind a switch)."""
    with pytest.raises(StorageError, match="AZURE_STORAGE_ENDPOINT"):
        cloud_settings(AZ, {"AZURE_STORAGE_USE_EMULATOR": "true"})
    s = cloud_settings(
        AZ,
        {
            "AZURE_STORAGE_USE_EMULATOR": "true",
            "AZURE_STORAGE_ENDPOINT": "http://127.0.0.1:10000/devstoreaccount1",
        },
    )
    assert s.config["account_name"] == EMULATOR_ACCOUNT and s.allow_http


def test_azure_workload_identity() -> None:
    """Workload identity: the federated token file with client and tenant ids."""
    s = cloud_settings(
        AZ,
        {
            "AZURE_STORAGE_ACCOUNT_NAME": "acct",
            "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
            "AZURE_CLIENT_ID": "cid",
            "AZURE_TENANT_ID": "tid",
        },
    )
    assert str(s.config["federated_token_file"]).endswith("azure-identity-token")
    assert (s.config["client_id"], s.config["tenant_id"]) == ("cid", "tid")
    assert s.explicit_credentials and s.secret_variable == "AZURE_FEDERATED_TOKEN_FILE"


def test_gcs_credentials_and_emulator() -> None:
    """GOOGLE_APPLICATION_CREDENTIALS is passed on; STORAGE_EMULATOR_HOST=http://... points at an
    emulator without OAuth and allows plain HTTP; without a scheme it stays https."""
    s = cloud_settings(GS, {"GOOGLE_APPLICATION_CREDENTIALS": "/etc/gcs.json"})
    assert s.config["application_credentials"] == "/etc/gcs.json" and not s.allow_http
    emu = cloud_settings(GS, {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443"})
    key = json.loads(str(emu.config["service_account_key"]))
    assert key["gcs_base_url"] == "http://127.0.0.1:4443" and key["disable_oauth"] is True
    assert emu.allow_http
    with pytest.raises(StorageError, match="STORAGE_EMULATOR_HOST"):
        cloud_settings(GS, {"STORAGE_EMULATOR_HOST": "127.0.0.1:4443"})


def test_etag_keeps_the_version() -> None:
    """Our ETag carries the server's ETag and version (GCS generation) and splits back."""
    assert split_etag(compose_etag('"abc"', "1700")) == ('"abc"', "1700")
    assert split_etag(compose_etag('"abc"', None)) == ('"abc"', None)
    assert split_etag(compose_etag(None, "5")) == (None, "5")


def test_summary_cuts_url_queries() -> None:
    """A SAS token in a URL's query string never reaches a message."""
    exc = RuntimeError("Error performing GET https://a.blob.core.windows.net/c/k?sv=1&sig=SECRET x")
    assert "SECRET" not in summary(exc) and "https://a.blob.core.windows.net/c/k?…" in summary(exc)


def test_file_store_does_not_import_obstore() -> None:
    """Opening a file:// store (and importing the storage package) never imports obstore."""
    code = (
        "import sys\n"
        "from spire_oidc.config.storage_url import parse_storage_url\n"
        "from spire_oidc.storage.open import open_store\n"
        "open_store(parse_storage_url('file:///tmp/x'))\n"
        "assert 'obstore' not in sys.modules, 'obstore imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
