"""esctl: the operations command line for esctl_lib event stores and processors."""

__version__ = "0.1.0"
