"""The Jupyter server extension: REST API over the secrets service."""
