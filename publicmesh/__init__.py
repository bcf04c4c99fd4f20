"""Public Service Mesh (公共サービスメッシュ): a data-exchange platform for public services."""

import os as _os

__version__ = "0.1.0"

# Arrow's allocator (mimalloc) keeps the memory it frees for its next use instead of giving it back to the system
# 10 ms later: on a virtual machine that hands freed memory back to its host, touching it again costs more than
# much of the work done in it (publishing to 10,000,000 residents: 9 CPU-s less, 600 MiB more at the summed peak).
# Set here, before pyarrow loads, so that every process of the mesh and every command has it.
_os.environ.setdefault("MIMALLOC_PURGE_DELAY", "1000")
