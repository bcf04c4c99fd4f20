"""Running the mesh: topology, provisioning, seeding, serving and supervising the parts."""
