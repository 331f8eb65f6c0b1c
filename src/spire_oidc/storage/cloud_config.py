"""From the environment to an object-store client's settings, one cloud at a time (pure).

Each cloud's standard variables and credential chain (docs/storage.md has the table):

* S3: ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``;
  credentials ``AWS_ACCESS_KEY_ID`` + ``AWS_SECRET_ACCESS_KEY`` (+ ``AWS_SESSION_TOKEN``), else
  web identity (``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``), else container credentials
  (``AWS_CONTAINER_CREDENTIALS_*``), else the instance profile;
* Azure: ``AZURE_STORAGE_ACCOUNT_NAME`` + ``AZURE_STORAGE_ACCOUNT_KEY`` (or a SAS), or
  ``AZURE_STORAGE_CONNECTION_STRING``, or the emulator (``AZURE_STORAGE_USE_EMULATOR=true``:
  the well-known development account), or workload identity (``AZURE_FEDERATED_TOKEN_FILE`` +
  ``AZURE_CLIENT_ID`` + ``AZURE_TENANT_ID``), or a client secret, else managed identity;
  ``AZURE_STORAGE_ENDPOINT`` overrides the endpoint;
* GCS: ``GOOGLE_APPLICATION_CREDENTIALS``, else the metadata server (GKE workload identity);
  ``STORAGE_EMULATOR_HOST`` (Google's emulator variable) points at an emulator.

The ``http://`` rule: plain HTTP is allowed only when the endpoint variable itself says
``http://`` (a test server or emulator on loopback); nothing else turns it on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from spire_oidc.config.storage_url import StorageLocation
from spire_oidc.storage.base import StorageError

# Azurite's published development account (the standard clients' "UseDevelopmentStorage").
EMULATOR_ACCOUNT: Final = "devstoreaccount1"
EMULATOR_KEY: Final = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_TRUE: Final = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class CloudSettings:
    """What the obstore backend needs for one location (no I/O, no obstore)."""

    location: StorageLocation
    config: Mapping[str, str | bool] = field(repr=False)  # may hold secrets: never logged
    allow_http: bool
    endpoint: str | None
    explicit_credentials: bool  # configured, not left to an instance/metadata chain
    no_credentials_hint: str  # what to set when no credentials are found
    secret_variable: str  # the variable whose secret a "signature refused" answer blames

    def describe(self) -> str:
        cloud = {"s3": "S3", "az": "Azure Blob", "gs": "GCS"}[self.location.scheme]
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"{cloud} storage {self.location}{where}"


def _get(env: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """The first of ``names`` set to a non-empty value: (name, value)."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return name, value
    return None


def _endpoint(location: StorageLocation, variable: str, value: str) -> tuple[str, bool]:
    """``value`` without a trailing '/', and whether it is plain HTTP (only when it says so)."""
    lowered = value.lower()
    if lowered.startswith("https://"):
        return value.rstrip("/"), False
    if lowered.startswith("http://"):
        return value.rstrip("/"), True
    raise StorageError(
        f"storage {location}: {variable}={value!r} must start with https:// "
        "(or http:// for a test server or emulator, which then allows plain HTTP)",
        reason="invalid",
    )


def _pair(location: StorageLocation, env: Mapping[str, str], a: str, b: str) -> bool:
    """True when both ``a`` and ``b`` are set; an error naming the missing one if only one is."""
    has_a, has_b = bool(env.get(a, "").strip()), bool(env.get(b, "").strip())
    if has_a != has_b:
        given, missing = (a, b) if has_a else (b, a)
        raise StorageError(
            f"storage {location}: {given} is set but {missing} is not: set both",
            reason="credentials",
        )
    return has_a


def s3_settings(location: StorageLocation, env: Mapping[str, str]) -> CloudSettings:
    config: dict[str, str | bool] = {}
    endpoint, allow_http = None, False
    found = _get(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    if found:
        endpoint, allow_http = _endpoint(location, *found)
        config["endpoint"] = endpoint
    region = _get(env, "AWS_REGION", "AWS_DEFAULT_REGION")
    if region:
        config["region"] = region[1]
    explicit = False
    secret_variable = "AWS_SECRET_ACCESS_KEY"
    if _pair(location, env, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        config["access_key_id"] = env["AWS_ACCESS_KEY_ID"].strip()
        config["secret_access_key"] = env["AWS_SECRET_ACCESS_KEY"].strip()
        token = _get(env, "AWS_SESSION_TOKEN")
        if token:
            config["session_token"] = token[1]
        explicit = True
    elif _pair(location, env, "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        config["web_identity_token_file"] = env["AWS_WEB_IDENTITY_TOKEN_FILE"].strip()
        config["role_arn"] = env["AWS_ROLE_ARN"].strip()
        for var, key in (("AWS_ROLE_SESSION_NAME", "role_session_name"),
                         ("AWS_STS_ENDPOINT", "sts_endpoint")):  # fmt: skip
            if _get(env, var):
                config[key] = env[var].strip()
        explicit = True
        secret_variable = "AWS_WEB_IDENTITY_TOKEN_FILE"
    else:
        for var, key in (
            ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "container_credentials_relative_uri"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "container_credentials_full_uri"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "container_authorization_token_file"),
            ("AWS_METADATA_ENDPOINT", "metadata_endpoint"),
        ):
            if _get(env, var):
                config[key] = env[var].strip()
                explicit = explicit or var.startswith("AWS_CONTAINER_CREDENTIALS")
    return CloudSettings(
        location,
        config,
        allow_http,
        endpoint,
        explicit,
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_WEB_IDENTITY_TOKEN_FILE and "
        "AWS_ROLE_ARN, or run with an instance profile (or container credentials)",
        secret_variable,
    )


def parse_connection_string(value: str) -> dict[str, str]:
    """``Key=Value;Key=Value`` (values may contain '='), keys as written."""
    parts: dict[str, str] = {}
    for item in value.split(";"):
        key, sep, val = item.strip().partition("=")
        if sep and key:
            parts[key.strip()] = val.strip()
    return parts


def azure_settings(location: StorageLocation, env: Mapping[str, str]) -> CloudSettings:
    config: dict[str, str | bool] = {}
    endpoint_found = _get(env, "AZURE_STORAGE_ENDPOINT", "AZURE_ENDPOINT")
    account = _get(env, "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT")
    key = _get(env, "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_KEY")
    sas = _get(env, "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_SAS_KEY")
    secret_variable = key[0] if key else "AZURE_STORAGE_ACCOUNT_KEY"
    conn = _get(env, "AZURE_STORAGE_CONNECTION_STRING")
    emulator = env.get("AZURE_STORAGE_USE_EMULATOR", "").strip().lower() in _TRUE
    if conn:
        parts = parse_connection_string(conn[1])
        if parts.get("UseDevelopmentStorage", "").lower() == "true":
            emulator = True
        account = (
            ("AccountName in AZURE_STORAGE_CONNECTION_STRING", parts["AccountName"])
            if ("AccountName" in parts)
            else account
        )
        if "AccountKey" in parts:
            key = ("AccountKey in AZURE_STORAGE_CONNECTION_STRING", parts["AccountKey"])
            secret_variable = "AZURE_STORAGE_CONNECTION_STRING (AccountKey)"
        if "SharedAccessSignature" in parts:
            sas = ("SharedAccessSignature", parts["SharedAccessSignature"])
        if "BlobEndpoint" in parts and not endpoint_found:
            endpoint_found = (
                "BlobEndpoint in AZURE_STORAGE_CONNECTION_STRING",
                parts["BlobEndpoint"],
            )
    if emulator:
        account = account or ("AZURE_STORAGE_USE_EMULATOR", EMULATOR_ACCOUNT)
        key = key or ("AZURE_STORAGE_USE_EMULATOR", EMULATOR_KEY)
        if not endpoint_found:
            raise StorageError(
                f"storage {location}: AZURE_STORAGE_USE_EMULATOR needs the emulator's endpoint: "
                f"set AZURE_STORAGE_ENDPOINT (e.g. http://127.0.0.1:10000/{EMULATOR_ACCOUNT})",
                reason="invalid",
            )
    if not account:
        raise StorageError(
            f"storage {location}: set AZURE_STORAGE_ACCOUNT_NAME (or "
            "AZURE_STORAGE_CONNECTION_STRING) to name the storage account",
            reason="credentials",
        )
    config["account_name"] = account[1]
    endpoint, allow_http = None, False
    if endpoint_found:
        endpoint, allow_http = _endpoint(location, *endpoint_found)
        config["endpoint"] = endpoint
    explicit = True
    if key:
        config["account_key"] = key[1]
    elif sas:
        config["sas_key"] = sas[1].lstrip("?")
        secret_variable = sas[0]
    elif _get(env, "AZURE_FEDERATED_TOKEN_FILE"):
        config["federated_token_file"] = env["AZURE_FEDERATED_TOKEN_FILE"].strip()
        secret_variable = "AZURE_FEDERATED_TOKEN_FILE"
    elif _get(env, "AZURE_CLIENT_SECRET"):
        config["client_secret"] = env["AZURE_CLIENT_SECRET"].strip()
        secret_variable = "AZURE_CLIENT_SECRET"
    else:
        explicit = False  # managed identity (IMDS), if the host has one
        secret_variable = "AZURE_STORAGE_ACCOUNT_KEY"
    for var, cfg in (("AZURE_CLIENT_ID", "client_id"), ("AZURE_TENANT_ID", "tenant_id"),
                     ("AZURE_AUTHORITY_HOST", "authority_host")):  # fmt: skip
        if _get(env, var) and "account_key" not in config:
            config[cfg] = env[var].strip()
    return CloudSettings(
        location,
        config,
        allow_http,
        endpoint,
        explicit,
        "set AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_CONNECTION_STRING, or "
        "AZURE_STORAGE_SAS_TOKEN), or use workload identity (AZURE_FEDERATED_TOKEN_FILE, "
        "AZURE_CLIENT_ID, AZURE_TENANT_ID) or a managed identity",
        secret_variable,
    )


def gcs_settings(location: StorageLocation, env: Mapping[str, str]) -> CloudSettings:
    config: dict[str, str | bool] = {}
    endpoint, allow_http, explicit = None, False, False
    emulator = _get(env, "STORAGE_EMULATOR_HOST")
    creds = _get(env, "GOOGLE_APPLICATION_CREDENTIALS")
    if emulator:
        endpoint, allow_http = _endpoint(location, *emulator)
        # An emulator takes no OAuth: obstore's documented service-account form for that.
        config["service_account_key"] = json.dumps(
            {
                "gcs_base_url": endpoint,
                "disable_oauth": True,
                "client_email": "",
                "private_key": "",
                "private_key_id": "",
            }
        )
        explicit = True
    elif creds:
        config["application_credentials"] = creds[1]
        explicit = True
    return CloudSettings(
        location,
        config,
        allow_http,
        endpoint,
        explicit,
        "set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, or run with a "
        "service account (GKE workload identity, the metadata server)",
        "GOOGLE_APPLICATION_CREDENTIALS",
    )


def cloud_settings(location: StorageLocation, env: Mapping[str, str]) -> CloudSettings:
    """The settings for a cloud location; :class:`StorageError` names a missing variable."""
    if location.scheme == "s3":
        return s3_settings(location, env)
    if location.scheme == "az":
        return azure_settings(location, env)
    if location.scheme == "gs":
        return gcs_settings(location, env)
    raise ValueError(f"not a cloud location: {location}")
