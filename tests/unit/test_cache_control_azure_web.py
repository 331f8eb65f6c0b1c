"""Azure's static-website container ``$web`` in storage URLs (the "Behind a CDN" Azure recipe)."""

from __future__ import annotations

import pytest

from spire_oidc.config.load import expand_env, parse_config
from spire_oidc.config.storage_url import StorageLocation, StorageURLError, parse_storage_url

CONFIG = """
domains = ["oidc.example.org"]
jwt_issuer = "https://oidc.example.org"
workload_api {
  socket_path = "/tmp/agent.sock"
  trust_domain = "example.org"
}
publish {
  url = "%s"
}
"""


def test_az_accepts_the_static_website_container() -> None:
    """az://$web/PREFIX parses to the container $web and the prefix."""
    assert parse_storage_url("az://$web/oidc/prod") == StorageLocation("az", "$web", "oidc/prod")
    assert parse_storage_url("az://$web") == StorageLocation("az", "$web", "")
    assert str(parse_storage_url("az://$web/oidc/")) == "az://$web/oidc"


@pytest.mark.parametrize(
    "url", ["s3://$web/x", "gs://$web/x", "az://$Web/x", "az://$web2/x", "az://web$/x", "az://$/x"]
)
def test_dollar_is_accepted_nowhere_else(url: str) -> None:
    """Only exactly $web, and only for az://, may carry a '$'."""
    with pytest.raises(StorageURLError):
        parse_storage_url(url)


def test_az_error_names_the_static_website_container() -> None:
    """A bad az:// container name says $web is allowed too."""
    with pytest.raises(StorageURLError, match=r"\$web"):
        parse_storage_url("az://Bad_Container/x")


def test_publish_block_accepts_web_and_expand_env_needs_double_dollar() -> None:
    """publish { url = "az://$web/..." } loads; under -expandEnv it is written $$web."""
    config = parse_config(CONFIG % "az://$web/oidc")
    assert config.publish is not None and config.publish.url == "az://$web/oidc"
    expanded = expand_env(CONFIG % "az://$$web/oidc", {"web": "wrong"})
    loaded = parse_config(expanded)
    assert loaded.publish is not None and loaded.publish.url == "az://$web/oidc"
