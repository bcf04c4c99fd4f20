"""Agency nodes: reference provider systems, each its own app and database, reachable only over HTTP."""
