"""The mesh hub (公共サービスメッシュ): member registry, access rules, the signed exchange, bulk, event routing,
the API catalog and the audit append."""
