"""Configuration: SPIRE's config files read into frozen dataclasses (HCL v1, JSON, Go
compatibility, domain policy)."""
