# Kept tiny and lazy: twistd imports every plugin module to list them, and
# ServiceMaker imports rais.tap only when the rais subcommand is used.
from twisted.application.service import ServiceMaker

rais = ServiceMaker(
    "RAIS node",
    "rais.tap",
    "A RAIS high-availability node (Redundant Array of Inexpensive Servers)",
    "rais",
)
