"""The provider node framework: a member's datasets, its signed HTTP node, its outbox and inbox, and the fast
loading of its tables. Agency systems, the services part and the portal's inbox are providers built on it."""
