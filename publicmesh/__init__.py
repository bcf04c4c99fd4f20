"""Public Service Mesh (公共サービスメッシュ): a data-exchange platform for public services."""

__version__ = "0.1.0"
