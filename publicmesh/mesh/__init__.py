"""The mesh hub (公共サービスメッシュ): members, access rules, signed exchange, bulk, events, catalog."""
