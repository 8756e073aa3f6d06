"""A fake Kubernetes API server and kubelet on loopback, for the Kubernetes executor's tests and benchmarks."""
