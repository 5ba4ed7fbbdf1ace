"""bind-ha: the agent that elects BIND's primary through a Kubernetes Lease."""

__version__ = "0.1.0"
