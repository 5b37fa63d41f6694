"""Workloads: model generators, ONNX import and the native workload format.

Generators build a hardware-independent :class:`~pipesim.workloads.opgraph.OpGraph`
(FLOPs, bytes, parameters per operator); :func:`~pipesim.workloads.lower.lower`
turns it into a :class:`~pipesim.placement.workload.Workload` for a hardware system.
"""
