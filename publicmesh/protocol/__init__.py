"""The mesh protocol: what every member needs to speak to the hub — member ids, RFC 9421 message signatures,
the mesh CA and trust store, the signed member client and the Arrow wire formats. Nothing here knows the hub."""
