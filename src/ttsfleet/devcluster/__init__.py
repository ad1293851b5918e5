"""The embedded local fleet: a Kubernetes API emulator and a pod runner for one machine.

A developer tool and the end-to-end test bed; production runs on Kubernetes.
"""
