"""Test harness: the real components the tests and `make demo` run locally.

Everything here starts real programs (etcd, kube-apiserver, named, the agent)
bound to 127.0.0.0/8 and stops them by the PIDs it recorded.
"""
