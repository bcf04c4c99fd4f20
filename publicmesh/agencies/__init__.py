"""Agency systems (reference providers), each its own node and database, reachable only through the hub."""
