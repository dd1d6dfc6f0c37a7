"""What the tests ask of processes they started."""


def state(pid: int) -> str:
    """The process's state letter from /proc ("R", "S", "Z", ...), or "gone"."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"
