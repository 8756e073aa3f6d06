"""Executors: run one resolved pod (local processes or a Kubernetes Pod) and report what happened."""
