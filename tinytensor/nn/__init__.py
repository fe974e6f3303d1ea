"""tinytensor.nn: neural-network building blocks. So far only `functional`; modules come with chapter 03."""
from . import functional  # noqa: F401
